"""readiness.py's state machine, driven by scripted probe outcomes and a fake clock.

The same behaviours against a real HTTP server (delayed start, boot failure, bad credentials)
are in test_wait_standin.py.
"""

from __future__ import annotations

import pytest

from dindjobs.errors import (
    JenkinsAPIError,
    JenkinsAuthError,
    JenkinsConnectionError,
    JenkinsNotReadyError,
    TimeoutExpired,
)
from dindjobs.jenkins.readiness import wait_ready

REFUSED = JenkinsConnectionError("cannot reach Jenkins at http://x/ (connection refused)")
LOADING = JenkinsNotReadyError("503 Jenkins is not ready (getting ready) for whoAmI")
BAD_CREDS = JenkinsAuthError("401 bad credentials", status=401)
BOOT = JenkinsAPIError("500 Internal Server Error on whoAmI", status=500)
ME = {"name": "admin", "anonymous": False}
ANON = {"name": "anonymous", "anonymous": True}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class ScriptedClient:
    url, version, user = "http://x/", "2.492.3", "admin"
    server_label = "Jenkins 2.492.3"

    def __init__(self, whoami, root=None):
        self.whoami_script = list(whoami)
        self.root_script = list(root or [])
        self.calls = 0

    def _next(self, script):
        step = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(step, Exception):
            raise step
        return step

    def whoami(self, retries=None):
        self.calls += 1
        assert retries == 0  # the waiter does its own polling
        return self._next(self.whoami_script)

    def get_json(self, path, what, retries=None):
        return self._next(self.root_script or [{"mode": "NORMAL"}])


def run(client, timeout=10.0, **kw):
    clock = Clock()
    seen = []
    info = wait_ready(client, timeout, on_progress=seen.append, clock=clock, sleep=clock.sleep, **kw)
    return info, seen, clock


def test_refused_then_loading_then_ready():
    client = ScriptedClient([REFUSED, REFUSED, LOADING, LOADING, ME])
    info, seen, clock = run(client)
    assert info["url"] == "http://x/" and info["version"] == "2.492.3"
    assert seen == ["waiting for http://x/: connection refused", "waiting for http://x/: 503 getting ready",
                    "http://x/: ready"]
    assert client.calls == 5
    assert clock.now == pytest.approx(0.4)  # four short intervals: readiness is noticed at once


def test_timeout_names_the_last_state_and_its_duration():
    client = ScriptedClient([REFUSED] * 3 + [LOADING])
    with pytest.raises(TimeoutExpired) as info:
        run(client, timeout=5.0)
    assert "last state: 503 getting ready for 4.7 s" in info.value.message


def test_bad_credentials_are_reported_on_timeout():
    with pytest.raises(TimeoutExpired, match="last state: 401 bad credentials"):
        run(ScriptedClient([BAD_CREDS]), timeout=2.0)


def test_anonymous_identity_is_not_ready():
    with pytest.raises(TimeoutExpired, match="only anonymous"):
        run(ScriptedClient([ANON]), timeout=1.0)


def test_persistent_500_fails_fast():
    client = ScriptedClient([LOADING, BOOT])
    with pytest.raises(JenkinsAPIError, match="failed to start"):
        run(client, timeout=300.0)
    assert client.calls == 4  # one 503, then three 500s in a row: no waiting for the timeout


def test_a_single_500_is_not_fatal():
    info, _, _ = run(ScriptedClient([BOOT, LOADING, ME]))
    assert info["user"] == "admin"


def test_missing_read_permission_fails_fast():
    denied = JenkinsAuthError("403 user 'bob' is missing the hudson.model.Hudson.Read permission", status=403)
    with pytest.raises(JenkinsAuthError, match="Hudson.Read"):
        run(ScriptedClient([ME], root=[denied]), timeout=300.0)


def test_nested_daemon_is_waited_for_after_jenkins():
    answers = iter(["not answering yet", "not answering yet", None])
    info, seen, clock = run(ScriptedClient([ME]), daemon_check=lambda: next(answers))
    assert seen == ["waiting for http://x/: Jenkins ready; nested Docker daemon: not answering yet",
                    "http://x/: ready"]
    assert clock.now == pytest.approx(0.2)
