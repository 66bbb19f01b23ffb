"""backup.py's decisions without an engine: draining, refusals, recorded settings, order of work."""

from __future__ import annotations

import datetime
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from dindjobs.backup import quietdown
from dindjobs.backup.operations import backup, default_archive_name, drain, restore, spec_from_manifest
from dindjobs.config import Settings
from dindjobs.errors import BackupError, JenkinsConnectionError, TimeoutExpired, WrapperError
from support.archives import forged_archive
from support.fakewrapper import FakeWrapper


class FakeJenkins:
    def __init__(self, runs):
        self.runs = list(runs)

    def running_builds(self):
        return self.runs.pop(0) if len(self.runs) > 1 else self.runs[0]


def test_drain_returns_once_nothing_runs_and_reports_changes():
    lines = []
    drain(FakeJenkins([["a #1", "b #2"], ["b #2"], []]), 10, lines.append, sleep=lambda _: None)
    assert lines == ["waiting for 2 running build(s): a #1, b #2", "waiting for 1 running build(s): b #2"]


def test_drain_times_out_naming_the_builds():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    with pytest.raises(TimeoutExpired, match=r"builds still running after 3 s: slow #4"):
        drain(FakeJenkins([["slow #4"]]), 3, clock=lambda: now[0], sleep=sleep)


def test_live_with_images_and_existing_output_are_refused_before_anything(tmp_path):
    wrapper = FakeWrapper()
    with pytest.raises(BackupError, match="--live cannot be combined with --with-images"):
        backup(wrapper, Settings(), tmp_path / "b.tar.gz", live=True, with_images=True)
    (tmp_path / "b.tar.gz").write_bytes(b"keep me")
    with pytest.raises(BackupError, match="exists: not overwriting"):
        backup(wrapper, Settings(), tmp_path / "b.tar.gz")
    with pytest.raises(BackupError, match=r"\.tar\.gz or \.tar\.zst"):
        backup(wrapper, Settings(), tmp_path / "b.zip")
    with pytest.raises(WrapperError, match="not managed by dindjobs"):
        backup(FakeWrapper(managed=False), Settings(), tmp_path / "c.tar.gz")
    assert wrapper.client.changes == [] and (tmp_path / "b.tar.gz").read_bytes() == b"keep me"


def test_restore_refuses_existing_volumes_without_force(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really")
    wrapper = FakeWrapper(container=None, volumes=["w-jenkins-home"])
    with pytest.raises(BackupError, match=r"already exists \(w-jenkins-home\)") as caught:
        restore(wrapper, Settings(state_dir=tmp_path), archive)
    assert "--force" in caught.value.one_line()
    assert wrapper.client.changes == []


def test_restore_verifies_before_touching_anything(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00 truncated gzip")
    wrapper = FakeWrapper(volumes=["w-jenkins-home", "w-docker-data"])
    with pytest.raises(BackupError, match="corrupt or truncated"):
        restore(wrapper, Settings(state_dir=tmp_path), archive, force=True)
    assert wrapper.client.changes == []  # not even with --force: nothing was removed or created
    assert not (tmp_path / "w").exists()  # and no admin password was generated


def test_spec_from_manifest_uses_recorded_settings_and_overrides(tmp_path):
    manifest = {"image": "img:0", "wrapper": {"settings": {
        "image": "img:1", "port": 18080, "bind": "127.0.0.2", "network": "host", "security": "caps",
        "dockerd_args": ["--debug"], "password_file": "/elsewhere"}}}
    spec = spec_from_manifest(manifest, "copy", tmp_path / "pw")
    assert (spec.name, spec.image, spec.port, spec.bind, spec.network, spec.security, spec.dockerd_args) == \
        ("copy", "img:1", 18080, "127.0.0.2", "host", "caps", ("--debug",))
    assert spec.password_file == tmp_path / "pw"  # never the recorded path of another machine
    spec = spec_from_manifest(manifest, "copy", tmp_path / "pw", image="img:2", port=19000)
    assert (spec.image, spec.port) == ("img:2", 19000)
    assert spec_from_manifest({}, "bare", tmp_path / "pw").image == "dindjobs-wrapper:latest"


def test_default_archive_name():
    when = datetime.datetime(2026, 11, 28, 17, 5, 9, tzinfo=datetime.UTC)
    name = default_archive_name("ci", when)
    assert str(name).startswith("ci-20261128T170509Z.tar.") and name.parent == Path(".")


def volume_stream(top: str) -> list[bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(top)
        info.type, info.uid, info.gid = tarfile.DIRTYPE, 1000, 1000
        tar.addfile(info)
    return [buf.getvalue()]


class StoppableWrapper(FakeWrapper):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def stop(self):
        self.events.append("stop")

    def start(self):
        self.events.append("start")

    def get_archive(self, path):
        self.events.append(f"archive {path}")
        return volume_stream(path.rsplit("/", 1)[1])

    def volume_tar(self, image, path):
        self.events.append(f"helper tar {path} ({image})")
        return volume_stream(path.rsplit("/", 1)[1])


class ScriptedJenkins:
    """Jenkins as backup() sees it; ``down`` makes every call fail like a refused connection."""

    def __init__(self, events, down=False, quiet=False):
        self.events, self.down, self.quiet = events, down, quiet

    def __call__(self, settings, timeout):
        return self

    def quieting_down(self):
        if self.down:
            raise JenkinsConnectionError("cannot reach Jenkins at http://127.0.0.1:18080/ (connection refused)")
        return self.quiet

    def quiet_down(self, reason=None):
        self.events.append("quiet-down")

    def cancel_quiet_down(self):
        self.events.append("cancel")
        self.quiet = False

    def running_builds(self):
        self.events.append("drained")
        return []

    def close(self):
        pass


@pytest.mark.parametrize("quiet", [False, True])
def test_backup_order_quiet_drain_stop_archive_start(tmp_path, monkeypatch, quiet):
    events = []
    monkeypatch.setattr("dindjobs.backup.operations.Jenkins", ScriptedJenkins(events, quiet=quiet))
    monkeypatch.setattr("dindjobs.backup.operations._wait_back", lambda *a: events.append("ready"))
    result = backup(StoppableWrapper(events), Settings(state_dir=tmp_path), tmp_path / "b.tar.gz", with_images=True)
    expected = ["drained", "stop", "archive /var/jenkins_home", f"helper tar /var/lib/docker (sha256:{'a' * 64})", "start",
                "ready"]
    # A Jenkins already quieting down is put back into quiet-down after the restart; ours ends with it.
    assert events == (expected + ["quiet-down"] if quiet else ["quiet-down", *expected])
    assert result.downtime_seconds is not None and result.entries == 2


def test_backup_goes_on_when_jenkins_does_not_answer(tmp_path, monkeypatch):
    events, lines = [], []
    monkeypatch.setattr("dindjobs.backup.operations.Jenkins", ScriptedJenkins(events, down=True))
    monkeypatch.setattr("dindjobs.backup.operations._wait_back", lambda *a: events.append("ready"))
    result = backup(StoppableWrapper(events), Settings(state_dir=tmp_path), tmp_path / "b.tar.gz", progress=lines.append)
    assert events == ["stop", "archive /var/jenkins_home", "start"]
    assert any("Jenkins does not answer" in line and "cut short" in line for line in lines)
    assert (tmp_path / "b.tar.gz").is_file() and result.was_running


def test_live_backup_cancels_only_its_own_quiet_down(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr("dindjobs.backup.operations.Jenkins", ScriptedJenkins(events))
    result = backup(StoppableWrapper(events), Settings(state_dir=tmp_path), tmp_path / "b.tar.gz", live=True)
    assert events == ["quiet-down", "drained", "archive /var/jenkins_home", "cancel"]
    assert result.live and result.downtime_seconds is None


def test_restore_refuses_a_link_escape_before_creating_anything(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    forged_archive(archive, [("jenkins_home", tarfile.DIRTYPE, "", b""),
                             ("jenkins_home/x", tarfile.SYMTYPE, "/var/lib/docker", b""),
                             ("jenkins_home/x/FILE", tarfile.REGTYPE, "", b"planted")])
    wrapper = FakeWrapper(container=None)
    with pytest.raises(BackupError, match="symlink 'jenkins_home/x' -> '/var/lib/docker' leaves its volume"):
        restore(wrapper, Settings(state_dir=tmp_path), archive)
    assert wrapper.client.changes == []  # no volume created, no container
    assert not (tmp_path / "w").exists()


def test_backup_removes_partials_of_killed_backups_and_writes_0600(tmp_path, monkeypatch):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".old.tar.gz.partial-{dead.pid}"
    stale.write_bytes(b"half")
    events, lines = [], []
    monkeypatch.setattr("dindjobs.backup.operations.Jenkins", ScriptedJenkins(events))
    monkeypatch.setattr("dindjobs.backup.operations._wait_back", lambda *a: None)
    result = backup(StoppableWrapper(events), Settings(state_dir=tmp_path), tmp_path / "b.tar.gz", progress=lines.append)
    assert not stale.exists() and f"removed {stale}, left by a backup that was killed" in lines
    assert result.archive_mode == "0600"


def test_backup_first_undoes_the_quiet_down_a_killed_backup_left(tmp_path, monkeypatch):
    events, lines = [], []
    jenkins = ScriptedJenkins(events, quiet=True)
    monkeypatch.setattr("dindjobs.backup.operations.Jenkins", jenkins)
    monkeypatch.setattr("dindjobs.backup.quietdown.Jenkins", jenkins)
    monkeypatch.setattr("dindjobs.backup.operations._wait_back", lambda *a: events.append("ready"))
    settings = Settings(state_dir=tmp_path, name="w")
    quietdown.remember(settings.wrapper_state_dir, None)  # as a backup that is gone left it
    backup(StoppableWrapper(events), settings, tmp_path / "b.tar.gz", progress=lines.append)
    # Not "already quieting down": the stale quiet-down is cancelled, then ours is asked for and ends.
    assert events == ["cancel", "quiet-down", "drained", "stop", "archive /var/jenkins_home", "start", "ready"]
    assert "cancelled the quiet-down that a killed backup had left on" in lines
    assert not (settings.wrapper_state_dir / quietdown.RECORD).exists()
