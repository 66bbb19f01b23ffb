"""What a failed `up`, a `down --volumes` and a missing wrapper leave behind (issue 14), with the
real CLI against a fake docker client."""

from __future__ import annotations

import pytest

from dindjobs.wrapper.spec import EngineFacts
from support.cli import run_cli
from support.fakedocker import FakeEngine

NO_BRIDGE = EngineFacts(has_bridge=False)


@pytest.fixture
def engine(monkeypatch, clean_env):
    fake = FakeEngine()
    for module in ("up", "down", "status", "logs", "doctor"):
        monkeypatch.setattr(f"dindjobs.commands.{module}.connect", lambda: fake)
    return fake


def test_up_that_fails_on_a_busy_port_leaves_no_password_file(engine, monkeypatch, capsys, clean_env):
    monkeypatch.setattr("dindjobs.wrapper.container.engine_facts", lambda client: NO_BRIDGE)
    monkeypatch.setattr("dindjobs.wrapper.container._port_answers", lambda port: True)
    code, _, err = run_cli(capsys, "up", "--name", "dj", "--port", "18080")
    assert code == 1 and "port 18080 on 127.0.0.1 is already in use" in err
    state = clean_env / "state"
    assert not (state / "dj").exists(), sorted(p.name for p in state.rglob("*"))
    assert engine.containers_by_name == {}


def test_up_that_fails_keeps_a_password_that_was_there_before(engine, monkeypatch, capsys, clean_env):
    monkeypatch.setattr("dindjobs.wrapper.container.engine_facts", lambda client: NO_BRIDGE)
    monkeypatch.setattr("dindjobs.wrapper.container._port_answers", lambda port: False)
    assert run_cli(capsys, "up", "--name", "dj")[0] == 0
    password = clean_env / "state" / "dj" / "admin-password"
    before = password.read_text()
    assert run_cli(capsys, "down", "--name", "dj")[0] == 0
    monkeypatch.setattr("dindjobs.wrapper.container._port_answers", lambda port: True)
    assert run_cli(capsys, "up", "--name", "dj")[0] == 1
    assert password.read_text() == before


def test_down_volumes_removes_the_wrappers_empty_state_directory(engine, monkeypatch, capsys, clean_env):
    monkeypatch.setattr("dindjobs.wrapper.container.engine_facts", lambda client: NO_BRIDGE)
    monkeypatch.setattr("dindjobs.wrapper.container._port_answers", lambda port: False)
    assert run_cli(capsys, "up", "--name", "dj")[0] == 0
    assert (clean_env / "state" / "dj" / "admin-password").exists()
    code, _, err = run_cli(capsys, "down", "--name", "dj", "--volumes", "--yes")
    assert code == 0, err
    assert not (clean_env / "state" / "dj").exists()


@pytest.mark.parametrize("command", ["status", "logs", "doctor"])
def test_a_missing_wrapper_is_one_line_and_exit_1(engine, capsys, command):
    code, out, err = run_cli(capsys, command, "--name", "nothere")
    assert code == 1 and out == ""
    assert err.strip().splitlines() == ["dindjobs: error: no wrapper named nothere (start it with `dindjobs up`)"]
