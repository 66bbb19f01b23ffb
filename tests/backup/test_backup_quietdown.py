"""A killed backup's quiet-down: recorded in the state directory, undone by the next check."""

from __future__ import annotations

import os
import subprocess

import pytest

from dindjobs.backup import quietdown
from dindjobs.config import Secret, Settings
from dindjobs.jenkins.client import Jenkins
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_USER


class RunningWrapper:
    def __init__(self, url: str, started_at: str = "2026-12-06T10:00:00.1Z", status: str = "running"):
        self.url, self.name = url, "w"
        self._container = type("C", (), {"status": status, "attrs": {"State": {"StartedAt": started_at}}})()

    def container(self):
        return self._container


@pytest.fixture
def setup(standin, tmp_path):
    settings = Settings(url=standin.url, user=ADMIN_USER, password=Secret(ADMIN_PASSWORD, "test"), timeout=10,
                        state_dir=tmp_path, name="w")
    jenkins = Jenkins(settings)
    yield settings, jenkins, RunningWrapper(standin.url)
    jenkins.close()


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def record(settings, pid, started_at="2026-12-06T10:00:00.1Z"):
    quietdown.remember(settings.wrapper_state_dir, started_at)
    path = settings.wrapper_state_dir / quietdown.RECORD
    path.write_text(path.read_text().replace(f'"pid": {os.getpid()}', f'"pid": {pid}'))


def test_quiet_down_of_a_dead_backup_is_undone_once(setup):
    settings, jenkins, wrapper = setup
    jenkins.quiet_down("dindjobs backup")
    record(settings, dead_pid())
    assert quietdown.check(wrapper, settings, undo=False) == quietdown.QuietDown(True, ours=True)
    assert jenkins.quieting_down()  # looking is not undoing
    state = quietdown.check(wrapper, settings, undo=True)
    assert state.undone and not jenkins.quieting_down()
    assert not (settings.wrapper_state_dir / quietdown.RECORD).exists()
    assert quietdown.check(wrapper, settings, undo=True, only_if_recorded=True) is None


def test_quiet_down_of_a_running_backup_or_of_someone_else_is_left_alone(setup):
    settings, jenkins, wrapper = setup
    jenkins.quiet_down()
    running = subprocess.Popen(["sleep", "30"])
    try:
        record(settings, running.pid)
        state = quietdown.check(wrapper, settings, undo=True)
        assert state == quietdown.QuietDown(True, ours=True, backup_pid=running.pid) and jenkins.quieting_down()
    finally:
        running.kill()
        running.wait()
    quietdown.forget(settings.wrapper_state_dir)
    state = quietdown.check(wrapper, settings, undo=True)
    assert state == quietdown.QuietDown(True) and jenkins.quieting_down()
    assert "not asked by dindjobs" in state.describe()


def test_a_restart_since_the_record_means_jenkins_forgot_it(setup):
    settings, jenkins, _ = setup
    jenkins.quiet_down()  # someone else's, after the restart: never ours to cancel
    record(settings, dead_pid(), started_at="2026-12-06T09:00:00Z")
    state = quietdown.check(RunningWrapper(settings.url), settings, undo=True)
    assert state == quietdown.QuietDown(True) and jenkins.quieting_down()
    assert not (settings.wrapper_state_dir / quietdown.RECORD).exists()
    record(settings, dead_pid())
    assert quietdown.check(RunningWrapper(settings.url, status="exited"), settings, undo=True).quieting_down is None
    assert not (settings.wrapper_state_dir / quietdown.RECORD).exists()
