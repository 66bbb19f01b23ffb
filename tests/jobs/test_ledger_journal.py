"""The ledger's journal, corruption checks and instance keys, and the per-instance sync lock."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from dindjobs.errors import ConfigError
from dindjobs.jobs.ledger import Ledger, ledger_path
from dindjobs.jobs.lock import LockTimeout, SyncLock, lock_path

URL = "http://127.0.0.1:18080/"


def record(ledger, name, stored="s"):
    ledger.record("job", name, desired="d", stored=stored, manages_disabled=False)


def test_each_write_is_on_disk_before_save(tmp_path):
    ledger = Ledger.open(tmp_path, URL, "ID")
    record(ledger, "a")
    ledger.intend("job", "b", desired="hb", manages_disabled=True)
    record(ledger, "c")
    ledger.forget("job", "c")
    # no save(): what a killed process leaves behind
    again = Ledger.open(tmp_path, URL, "ID")
    assert again.get("job", "a")["stored"] == "s"
    assert again.get("job", "b")["pending"] == "hb"  # a push that may have landed is still ours
    assert again.get("job", "c") is None
    assert not again.journal_path.exists()  # folded into the file on open
    assert json.loads(ledger_path(tmp_path, URL, "ID").read_text())["items"].keys() == {"job:a", "job:b"}


def test_a_refused_push_gives_the_previous_record_back(tmp_path):
    ledger = Ledger.open(tmp_path, URL, "ID")
    record(ledger, "a", stored="old")
    previous = ledger.get("job", "a")
    ledger.intend("job", "a", desired="new", manages_disabled=False)
    ledger.restore("job", "a", previous)
    ledger.intend("job", "fresh", desired="x", manages_disabled=False)
    ledger.restore("job", "fresh", None)
    again = Ledger.open(tmp_path, URL, "ID")
    assert again.get("job", "a")["stored"] == "old" and "pending" not in again.get("job", "a")
    assert again.get("job", "fresh") is None


@pytest.mark.parametrize("content, message", [
    ("", "is corrupt \\(not JSON, empty\\)"),
    ('{"version": 1, "items": {"job:a": ', "is corrupt \\(not JSON\\)"),
    ('{"version": 7, "items": {}}', "has an unknown format"),
])
def test_a_corrupt_ledger_is_an_error_not_an_empty_ledger(tmp_path, content, message):
    path = ledger_path(tmp_path, URL, "ID")
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"ownership ledger {path} {message}"):
        Ledger.open(tmp_path, URL, "ID")


def test_a_corrupt_journal_is_an_error(tmp_path):
    ledger = Ledger.open(tmp_path, URL, "ID")
    record(ledger, "a")
    with open(ledger.journal_path, "ab") as fh:
        fh.write(b"{not json}\n")
    with pytest.raises(ConfigError, match="is corrupt at line 2"):
        Ledger.open(tmp_path, URL, "ID")


def test_a_half_written_journal_line_is_reported_but_a_read_only_look_skips_it(tmp_path):
    ledger = Ledger.open(tmp_path, URL, "ID")
    record(ledger, "a")
    with open(ledger.journal_path, "ab") as fh:
        fh.write(b'{"op": "record", "kind": "job", "na')
    assert Ledger.open(tmp_path, URL, "ID", writable=False).get("job", "a") is not None
    with pytest.raises(ConfigError, match="ends with a half-written line"):
        Ledger.open(tmp_path, URL, "ID")


def test_the_ledger_follows_the_instance_not_the_spelling(tmp_path):
    ledger = Ledger.open(tmp_path, "http://localhost:18080", None)
    record(ledger, "a")
    ledger.save()
    for spelling in ("http://127.0.0.1:18080/", "HTTP://LOCALHOST:18080/", "http://[::1]:18080"):
        assert Ledger.open(tmp_path, spelling, None).get("job", "a") is not None
    by_identity = Ledger.open(tmp_path, "http://localhost:18080/", "KEY")
    record(by_identity, "b")
    by_identity.save()
    assert Ledger.open(tmp_path, "http://ci.example:8080/", "KEY").get("job", "b") is not None


def test_a_ledger_of_the_old_layout_is_taken_over(tmp_path):
    old = tmp_path / "ledger" / (hashlib.sha256(f"{URL}\nID".encode()).hexdigest()[:24] + ".json")
    old.parent.mkdir()
    old.write_text(json.dumps({"version": 1, "items": {"job:a": {"kind": "job", "name": "a", "stored": "s"}}}))
    assert Ledger.open(tmp_path, URL, "ID").get("job", "a") is not None
    assert not old.exists() and ledger_path(tmp_path, URL, "ID").exists()


# --- the sync lock --------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from dindjobs.jobs.lock import SyncLock
    SyncLock(sys.argv[1], sys.argv[2]).acquire(5)
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
""")


def hold(tmp_path, url, seconds):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), url, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_sync_waits_then_names_the_holder(tmp_path):
    holder = hold(tmp_path, "http://localhost:18080", 30)
    try:
        said = []
        with pytest.raises(LockTimeout, match=f"started by pid {holder.pid} at .*gave up after 0.3 s"):
            SyncLock(tmp_path, "http://127.0.0.1:18080/").acquire(0.3, on_wait=said.append)
        assert said and said[0].startswith(f"waiting for the sync started by pid {holder.pid} at ")
        SyncLock(tmp_path, "http://127.0.0.1:18081/").acquire(0).release()  # another Jenkins: free
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path):
    holder = hold(tmp_path, URL, 30)
    holder.kill()  # kill -9: no cleanup
    holder.wait()
    assert lock_path(tmp_path, URL).exists()
    with SyncLock(tmp_path, URL).acquire(5) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_a_waiter_gets_the_lock_when_the_holder_finishes(tmp_path):
    holder = hold(tmp_path, URL, 0.5)
    try:
        SyncLock(tmp_path, URL).acquire(30).release()
    finally:
        holder.wait()


def test_a_stop_ends_the_wait(tmp_path):
    holder = hold(tmp_path, URL, 30)
    stop = threading.Event()
    stop.set()
    try:
        with pytest.raises(InterruptedError):
            SyncLock(tmp_path, URL).acquire(30, stop=stop)
    finally:
        holder.kill()
        holder.wait()
