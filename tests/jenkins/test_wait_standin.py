"""`dindjobs wait` against the stand-in: a delayed start, a boot failure, wrong credentials."""

from __future__ import annotations

import json

from dindjobs.config import Secret, Settings
from dindjobs.jenkins.readiness import wait
from dindjobs.standin import User
from support.cli import run_cli as run
from support.net import free_port
from support.standin_fixtures import ADMIN_TOKEN, ADMIN_USER, admin_user


def test_delayed_start_refused_then_getting_ready_then_ready(standin_factory, tmp_path):
    standin = standin_factory(start=False, port=free_port(), startup_delay=600)
    settings = Settings(url=standin.url, user=ADMIN_USER, token=Secret(ADMIN_TOKEN, "test"), timeout=5,
                        state_dir=tmp_path / "state")
    seen = []

    def progress(text):
        # Drive the stand-in from what the waiter reports, so no step depends on timing.
        seen.append(text)
        if text.endswith("connection refused"):
            standin.start(wait=False)  # listening, but loading for a long time
        elif text.endswith("503 getting ready"):
            standin.finish_startup()

    info = wait(settings, 60, on_progress=progress)
    assert seen == [f"waiting for {standin.url}: connection refused",
                    f"waiting for {standin.url}: 503 getting ready",
                    f"{standin.url}: ready"]
    assert info["user"] == ADMIN_USER and info["version"] and info["nested_daemon"] == "not checked"


def test_cli_wait_when_ready(standin_env, capsys):
    code, out, err = run(capsys, "wait", "--timeout", "30", "--no-wrapper", "--json")
    assert code == 0, err
    assert json.loads(out)["url"] == standin_env.url
    assert ADMIN_TOKEN not in out + err


def test_boot_failure_fails_fast(standin_env, capsys):
    standin_env.fail_boot()
    code, out, err = run(capsys, "wait", "--timeout", "600", "--no-wrapper")
    assert code == 1 and out == ""
    assert "failed to start: 500 on every request (boot failure)" in err
    assert "not ready after" not in err


def test_wrong_credentials_time_out_naming_the_state(standin_env, capsys, monkeypatch):
    monkeypatch.setenv("DINDJOBS_TOKEN", "not-the-token-81c2")
    code, _, err = run(capsys, "wait", "--timeout", "0.5", "--no-wrapper")
    assert code == 1
    assert "not ready after 0.5 s; last state: 401 bad credentials" in err
    assert "not-the-token-81c2" not in err


def test_no_credentials_is_not_ready(standin_env, capsys, monkeypatch):
    monkeypatch.delenv("DINDJOBS_TOKEN")
    monkeypatch.delenv("DINDJOBS_USER")
    code, _, err = run(capsys, "wait", "--timeout", "0.3", "--no-wrapper")
    assert code == 1 and "only anonymous" in err


def test_user_without_read_permission_fails_fast(standin_factory, clean_env, capsys, monkeypatch):
    standin = standin_factory(users=[admin_user(), User("nobody", Secret("nobody-pw", "test"))])
    standin.restrict("nobody", ["Job/Discover"])
    monkeypatch.setenv("DINDJOBS_URL", standin.url)
    monkeypatch.setenv("DINDJOBS_USER", "nobody")
    monkeypatch.setenv("DINDJOBS_PASSWORD", "nobody-pw")
    code, _, err = run(capsys, "wait", "--timeout", "600", "--no-wrapper")
    assert code == 1 and "missing the hudson.model.Hudson.Read permission" in err
