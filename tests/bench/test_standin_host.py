"""The stand-in host process: ready announcement and per-run request counts from its log."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from bench import standin_host
from bench.standin_host import request_counts
from bench.tools import ADMIN, Credentials, StandinProc
from dindjobs.standin import server
from dindjobs.standin.app import StandIn


def _get(url: str, token: str) -> int:
    auth = base64.b64encode(f"{ADMIN}:{token}".encode()).decode()
    req = urllib.request.Request(url + "api/json", headers={"Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_request_counts_split_reads_and_writes():
    log = [SimpleNamespace(method=m) for m in ("GET", "GET", "POST", "HEAD", "POST", "DELETE")]
    assert request_counts(log) == {"total": 6, "reads": 3, "writes": 3,
                                   "by_method": {"DELETE": 1, "GET": 2, "HEAD": 1, "POST": 2}}


@pytest.fixture
def creds(tmp_path):
    return Credentials(tmp_path / "creds")


def test_counts_cover_the_requests_since_the_last_reset(tmp_path, creds):
    with StandinProc(tmp_path / "home", creds) as standin:
        assert standin.ready_at is not None
        assert _get(standin.url, creds.token) == 200
        assert _get(standin.url, "wrong-token") == 401
        counts = standin.counts()
        assert (counts["total"], counts["reads"], counts["writes"]) == (2, 2, 0)
        standin.reset()
        assert standin.counts()["total"] == 0
    assert standin.proc.returncode == 0 and not (tmp_path / "home").exists()


def test_loading_until_it_announces_ready(tmp_path, creds):
    standin = StandinProc(tmp_path / "home", creds, startup_delay=30, wait=False)
    try:
        assert _get(standin.url, creds.token) == 503
        assert standin.ready_at is None
    finally:
        standin.stop()


def test_a_restart_is_timed_from_the_command_to_ready_again(tmp_path, creds):
    with StandinProc(tmp_path / "home", creds) as standin:
        standin.restart(0.3, 0.2)
        assert _get(standin.url, creds.token) in (503, 200)  # 503 "restarting" at first
        seconds = standin.restarted()
        assert seconds >= 0.5  # at least the 503 phase and the closed port
        assert _get(standin.url, creds.token) == 200


def test_the_slower_double_waits_before_every_request_and_answers_the_same(monkeypatch, tmp_path):
    waits = []
    for method in ("do_GET", "do_POST", "do_HEAD", "do_PUT", "do_DELETE"):
        monkeypatch.setattr(server.Handler, method, getattr(server.Handler, method))  # restored afterwards
    monkeypatch.setattr(standin_host.time, "sleep", waits.append)
    standin = StandIn(tmp_path / "home", port=0, quiet_period=0.0)
    standin.start(wait=True)
    try:
        before = _get(standin.url, "no-such-token"), _get(standin.url + "nothing-here/", "no-such-token")
        assert waits == []
        standin_host.slow_down(0.02)
        after = _get(standin.url, "no-such-token"), _get(standin.url + "nothing-here/", "no-such-token")
    finally:
        standin.stop()
    assert after == before
    assert waits == [0.02, 0.02]
