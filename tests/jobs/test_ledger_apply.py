"""ledger.py and apply.py without a server: persistence, ordering barriers, failure handling.

The apply tests use a small recording stand-in for the *client object* (not an HTTP Jenkins):
it only logs calls, so the scheduling rules can be checked exactly. The same rules are checked
end to end against the Jenkins stand-in in test_sync_standin.py.
"""

from __future__ import annotations

import json
import threading
import time

from dindjobs.errors import JenkinsAPIError
from dindjobs.jobs.apply import _stages, apply_plan
from dindjobs.jobs.canonical import canonical, digest
from dindjobs.jobs.ledger import Ledger, ledger_path
from dindjobs.jobs.plan import Action, Change, Plan

XML = '<?xml version="1.0" encoding="utf-8"?>\n<project><description>d</description></project>\n'
FOLDER_XML = "<com.cloudbees.hudson.plugins.folder.Folder/>"


# --- ledger -----------------------------------------------------------------------------------------


def test_ledger_is_keyed_by_url_and_identity(tmp_path):
    a = Ledger.open(tmp_path, "http://127.0.0.1:8080/", "KEY-A")
    a.record("job", "Team/Deploy", desired="d1", stored="s1", manages_disabled=False)
    a.save()
    again = Ledger.open(tmp_path, "http://127.0.0.1:8080/", "KEY-A")
    assert again.get("job", "team/deploy")["stored"] == "s1"  # job names are case-insensitive
    fresh = Ledger.open(tmp_path, "http://127.0.0.1:8080/", "KEY-B")  # a new instance, same URL
    assert fresh.get("job", "Team/Deploy") is None and len(fresh) == 0
    assert ledger_path(tmp_path, "u", "A") != ledger_path(tmp_path, "u", "B")


def test_ledger_file_is_private_and_holds_no_identity_key(tmp_path):
    ledger = Ledger.open(tmp_path, "http://h/", "PUBLIC-KEY-MATERIAL")
    ledger.record("view", "V", desired=None, stored="s", manages_disabled=True)
    ledger.save()
    path = ledger_path(tmp_path, "http://h/", "PUBLIC-KEY-MATERIAL")
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    assert "PUBLIC-KEY-MATERIAL" not in path.read_text() and data["items"]["view:V"]["stored"] == "s"
    ledger.forget("view", "V")
    ledger.save()
    assert Ledger.open(tmp_path, "http://h/", "PUBLIC-KEY-MATERIAL").get("view", "V") is None


def test_ledger_views_are_case_sensitive(tmp_path):
    ledger = Ledger.memory()
    ledger.record("view", "Nightly", desired="d", stored="s", manages_disabled=True)
    assert ledger.get("view", "nightly") is None and ledger.get("view", "Nightly") is not None


# --- apply --------------------------------------------------------------------------------------------


class RecordingClient:
    """Logs each call with a global sequence number; a few names can be made to fail or be slow."""

    def __init__(self, fail=(), slow=()):
        self.fail, self.slow = set(fail), set(slow)
        self.events: list[tuple[int, str, str, str]] = []
        self.stored: dict[str, str] = {}
        self._lock = threading.Lock()
        self._seq = 0

    def _log(self, phase, op, name):
        with self._lock:
            self._seq += 1
            self.events.append((self._seq, phase, op, name))

    def _write(self, op, name, xml=None):
        self._log("start", op, name)
        if name in self.slow:
            time.sleep(0.2)  # widens the window a missing barrier would need; nothing asserts on time
        if name in self.fail:
            self._log("end", op, name)
            raise JenkinsAPIError(f"500 Jenkins rejected the XML of job {name!r}", status=500)
        if xml is not None:
            self.stored[name] = xml
        elif op.startswith("delete"):
            self.stored.pop(name, None)
        self._log("end", op, name)

    def create_job(self, name, xml):
        self._write("create_job", name, xml)

    def update_job(self, name, xml):
        self._write("update_job", name, xml)

    def delete_job(self, name):
        self._write("delete_job", name)

    def create_view(self, name, xml):
        self._write("create_view", name, xml)

    def update_view(self, name, xml):
        self._write("update_view", name, xml)

    def delete_view(self, name):
        self._write("delete_view", name)

    def disable_job(self, name):
        self._write("disable_job", name)

    def get_job_config(self, name):
        return self.stored.get(name, XML)

    get_view_config = get_job_config

    def writes(self):
        return [e for e in self.events if e[1] == "start"]

    def end_of(self, name):
        return next(seq for seq, phase, _, n in self.events if phase == "end" and n == name)

    def start_of(self, name):
        return next(seq for seq, phase, _, n in self.events if phase == "start" and n == name)


def change(name, action=Action.CREATE, kind="job", folder=False):
    xml = FOLDER_XML if folder else XML
    return Change(kind, name, action, is_folder=folder, push_xml=xml if action in
                  (Action.CREATE, Action.UPDATE, Action.DRIFTED) else None, manages_disabled=False,
                  desired_hash=digest(canonical(xml, ("disabled",))))


def test_stages_put_parents_before_children_and_views_after_jobs():
    changes = [change("f/g/j"), change("f", folder=True), change("f/g", folder=True), change("v", kind="view"),
               change("top"), change("gone/x", Action.DELETE), change("gone", Action.DELETE, folder=True),
               change("oldview", Action.DELETE, kind="view")]
    stages = [[c.name for c in stage] for stage in _stages(changes)]
    assert stages == [["f", "top"], ["f/g"], ["f/g/j"], ["v"], ["oldview"], ["gone/x"], ["gone"]]


def test_children_wait_for_a_slow_folder_with_many_workers():
    children = [change(f"slow/j{i}") for i in range(12)]
    plan = Plan([change("slow", folder=True), *children])
    client = RecordingClient(slow={"slow"})
    result = apply_plan(plan, client, Ledger.memory(), workers=8)
    assert not result.failed
    folder_done = client.end_of("slow")
    assert all(client.start_of(c.name) > folder_done for c in children)


def test_a_failure_does_not_stop_the_others_and_children_of_a_failed_folder_are_skipped():
    plan = Plan([change("a"), change("bad"), change("c"), change("broken", folder=True), change("broken/x")])
    client = RecordingClient(fail={"bad", "broken"})
    ledger = Ledger.memory()
    seen = []
    result = apply_plan(plan, client, ledger, workers=2, on_result=lambda r, done, total: seen.append((done, total)))
    outcome = {r.name: (r.result, r.reason) for r in result.items}
    assert outcome["a"][0] == outcome["c"][0] == "ok"
    assert outcome["bad"] == ("failed", "500 Jenkins rejected the XML of job 'bad'")
    assert outcome["broken/x"][0] == "skipped" and "broken" in outcome["broken/x"][1]
    assert "broken/x" not in [name for _, _, _, name in client.writes()]  # no request for it
    assert seen[-1] == (5, 5)
    assert ledger.get("job", "a") is not None and ledger.get("job", "bad") is None


def test_readback_hash_goes_to_the_ledger():
    client = RecordingClient()
    ledger = Ledger.memory()
    c = change("j")
    apply_plan(Plan([c]), client, ledger)
    record = ledger.get("job", "j")
    assert record["desired"] == c.desired_hash
    assert record["stored"] == digest(canonical(client.stored["j"], ("disabled",)))


def test_unchanged_and_conflicting_items_send_nothing():
    unchanged = Change("job", "same", Action.UNCHANGED,
                       record={"desired": "d", "stored": "s", "manages_disabled": False})
    conflict = Change("job", "theirs", Action.CONFLICT, reason="not ours")
    client = RecordingClient()
    ledger = Ledger.memory()
    result = apply_plan(Plan([unchanged, conflict], stale=[("job", "vanished")]), client, ledger)
    assert client.events == []
    assert [(r.name, r.result) for r in result.items] == [("theirs", "skipped")]
    assert result.unchanged == 1 and ledger.get("job", "same")["stored"] == "s"


def test_deletes_forget_ownership():
    ledger = Ledger.memory()
    ledger.record("job", "old", desired="d", stored="s", manages_disabled=False)
    client = RecordingClient()
    result = apply_plan(Plan([change("old", Action.DELETE)]), client, ledger)
    assert [r.result for r in result.items] == ["ok"] and ledger.get("job", "old") is None
    assert [op for _, _, op, _ in client.writes()] == ["delete_job"]
