"""`dindjobs backup` and `dindjobs restore`: consistent archives of the wrapper's two volumes.

Backup: quiet-down Jenkins and wait for running builds, stop the wrapper, stream its volumes
out of the stopped container (the Jenkins home through the engine's archive API, the nested
daemon's data through GNU tar in a helper, which keeps extended attributes), then bring the
wrapper back as it was (running or not, quieting down or not). ``live`` skips the stop. The
quiet-down is recorded (:mod:`dindjobs.backup.quietdown`) so a killed backup's is undone later.

Restore: verify the whole archive first, refuse to replace existing volumes without ``force``,
create the volumes, extract into them through a created-but-never-started container of the
wrapper image, then start the wrapper with the settings recorded in the archive and report the
jobs and builds Jenkins sees. The archive format is :mod:`dindjobs.backup.archive`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from dindjobs.backup import quietdown
from dindjobs.backup.archive import ArchiveWriter, Replay, remove_stale_partials, verify
from dindjobs.backup.compression import compression_of, default_suffix
from dindjobs.backup.quietdown import jenkins_settings
from dindjobs.config import Settings
from dindjobs.errors import BackupError, JenkinsConnectionError, JenkinsNotReadyError, TimeoutExpired
from dindjobs.jenkins.client import Jenkins
from dindjobs.jenkins.readiness import wait_ready
from dindjobs.progress import Progress, no_progress
from dindjobs.wrapper.container import Wrapper, is_running
from dindjobs.wrapper.secrets import admin_password_path, ensure_admin_password
from dindjobs.wrapper.spec import (
    DOCKER_DATA,
    JENKINS_HOME,
    LABEL_NETWORK,
    LABEL_SECURITY,
    LABEL_SETTINGS,
    WrapperSpec,
)

LIVE_WARNING = (
    "--live archives a running wrapper: Jenkins may write build records, queue.xml or plugin "
    "state while they are copied, so files in the archive can disagree with each other. Quiet-down "
    "keeps new builds from starting, but only a stopped wrapper gives a consistent archive."
)
POLL = 0.5


@dataclasses.dataclass
class BackupResult:
    """What a backup wrote and what it cost."""

    name: str
    path: str
    archive_bytes: int
    data_bytes: int
    entries: int
    seconds: float
    mb_per_s: float
    downtime_seconds: float | None  # stop to ready again; None when the wrapper kept running
    was_running: bool
    live: bool
    with_images: bool
    volumes: list[dict[str, Any]]
    archive_mode: str = "0600"  # owner only: the archive holds Jenkins' secrets and credentials


@dataclasses.dataclass
class RestoreResult:
    """What a restore brought back."""

    name: str
    path: str
    url: str
    security: str
    data_bytes: int
    entries: int
    verify_seconds: float
    restore_seconds: float
    mb_per_s: float
    jobs: int
    builds: int
    nested_images: int | None
    notes: list[str]
    password_file: str = ""  # the admin password file the restored wrapper mounts (never the value)
    password_source: str = ""


def default_archive_name(name: str, now: datetime.datetime | None = None) -> Path:
    """``<name>-<UTC time>.tar.zst`` (or ``.tar.gz`` without zstandard), in the current directory."""
    now = now or datetime.datetime.now(datetime.UTC)
    return Path(f"{name}-{now.strftime('%Y%m%dT%H%M%SZ')}{default_suffix()}")




def drain(client: Jenkins, timeout: float, progress: Progress = no_progress,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Wait until no build runs; TimeoutExpired naming the ones still running."""
    deadline = clock() + timeout
    last: list[str] = []
    while True:
        running = client.running_builds()
        if not running:
            return
        if running != last:
            progress(f"waiting for {len(running)} running build(s): {', '.join(running[:5])}"
                     + (" ..." if len(running) > 5 else ""))
            last = running
        if clock() >= deadline:
            raise TimeoutExpired(f"builds still running after {timeout:g} s: {', '.join(running[:5])}",
                                 hint="raise --drain-timeout, or stop those builds")
        sleep(POLL)


def _wait_back(wrapper: Wrapper, client: Jenkins, timeout: float, progress: Progress) -> None:
    wait_ready(client, timeout, on_progress=progress, daemon_check=wrapper.nested_daemon_state, interval=0.2)


def backup(wrapper: Wrapper, settings: Settings, output: Path | None = None, *, with_images: bool = False,
           live: bool = False, drain_timeout: float = 300.0, ready_timeout: float = 300.0,
           progress: Progress = no_progress) -> BackupResult:
    """Archive the wrapper's Jenkins home (and with ``with_images`` the nested daemon's data)."""
    if live and with_images:
        raise BackupError("--live cannot be combined with --with-images: the nested daemon's layer store and "
                          "databases change under a running daemon, and a copy of them may not load",
                          hint="drop --live (the wrapper is stopped for the copy and started again)")
    container = wrapper.existing()
    path = output or default_archive_name(wrapper.name)
    compression_of(path)
    if path.exists():
        raise BackupError(f"{path} exists: not overwriting it", hint="choose another -o")
    for stale in remove_stale_partials(path.parent):
        progress(f"removed {stale}, left by a backup that was killed")
    was_running = is_running(container)
    meta = {"wrapper": {
        "name": wrapper.name, "image": container.attrs.get("Config", {}).get("Image"),
        "image_id": container.attrs.get("Image"), "settings": json.loads(container.labels.get(LABEL_SETTINGS, "{}")),
        "security": container.labels.get(LABEL_SECURITY), "network": container.labels.get(LABEL_NETWORK),
        "state": container.status}, "live": live and was_running, "with_images": with_images}
    meta["image"] = meta["wrapper"]["image"]
    if live and was_running:
        progress(f"warning: {LIVE_WARNING}")

    client = None
    we_quieted = was_quiet = False
    state_dir = settings.wrapper_state_dir
    if was_running:
        stale = quietdown.check(wrapper, settings, undo=True, only_if_recorded=True)
        if stale is not None and stale.backup_pid is not None:
            raise BackupError(f"another backup of {wrapper.name} is running (process {stale.backup_pid})",
                              hint="wait for it to finish")
        if stale is not None and stale.undone:
            progress("cancelled the quiet-down that a killed backup had left on")
        client = Jenkins(jenkins_settings(settings, wrapper.url, admin_password_path(settings.wrapper_state_dir)),
                         timeout=min(settings.timeout, 10.0))
        try:
            was_quiet = client.quieting_down()
        except (JenkinsConnectionError, JenkinsNotReadyError) as exc:
            # A broken Jenkins is when a backup matters most: archive anyway, and say what is lost.
            progress(f"warning: Jenkins does not answer ({exc.one_line()}): no quiet-down, and a build "
                     "still running is cut short by the stop")
            client.close()
            client = None
        if client is not None and not was_quiet:
            # Recorded first: a backup killed from here on has its quiet-down undone by the next
            # backup, `up` or `status`.
            quietdown.remember(state_dir, (container.attrs.get("State") or {}).get("StartedAt"))
            client.quiet_down("dindjobs backup")
            we_quieted = True
            progress("Jenkins is quieting down: no new build starts")
    stopped_at = None
    downtime = None
    try:
        if client is not None:
            try:
                drain(client, drain_timeout, progress)
            except BaseException:
                if we_quieted:
                    client.cancel_quiet_down()
                    quietdown.forget(state_dir)
                raise
        if was_running:
            if not live:
                progress(f"stopping wrapper {wrapper.name} for a consistent copy")
                stopped_at = time.monotonic()
                wrapper.stop()
        start = time.monotonic()
        try:
            with ArchiveWriter(path, progress) as writer:
                writer.add_volume("jenkins-home", JENKINS_HOME, wrapper.get_archive(JENKINS_HOME))
                if with_images:
                    # GNU tar in a helper of the wrapper's image: the engine's archive API drops
                    # the xattrs that mark overlay2's opaque directories in nested image layers.
                    writer.add_volume("docker-data", DOCKER_DATA,
                                      wrapper.volume_tar(container.attrs.get("Image") or meta["image"], DOCKER_DATA))
                manifest = writer.commit(meta)
        finally:
            seconds = time.monotonic() - start
            if stopped_at is not None:
                progress(f"starting wrapper {wrapper.name} again")
                wrapper.start()
                quietdown.forget(state_dir)  # the restart ended our quiet-down
                if client is not None:
                    _wait_back(wrapper, client, ready_timeout, progress)
                    if was_quiet:
                        client.quiet_down()  # it was quieting down before: a restart forgets that
                else:
                    progress("not waiting for Jenkins after the start: it did not answer before either")
                downtime = time.monotonic() - stopped_at
            elif we_quieted:
                client.cancel_quiet_down()
                quietdown.forget(state_dir)
    finally:
        if client is not None:
            client.close()
    data_bytes = sum(v["bytes"] for v in manifest["volumes"])
    return BackupResult(
        name=wrapper.name, path=str(path), archive_bytes=path.stat().st_size, data_bytes=data_bytes,
        entries=len(manifest["files"]), seconds=round(seconds, 3), mb_per_s=_rate(data_bytes, seconds),
        downtime_seconds=round(downtime, 3) if downtime is not None else None, was_running=was_running,
        live=live and was_running, with_images=with_images, volumes=manifest["volumes"],
        archive_mode=f"{path.stat().st_mode & 0o777:04o}")


def _rate(count: int, seconds: float) -> float:
    return round(count / 1e6 / max(seconds, 1e-6), 1)


def spec_from_manifest(manifest: dict[str, Any], name: str, password_file: Path, *, image: str | None = None,
                       port: int | None = None) -> WrapperSpec:
    """The wrapper as recorded in the archive, under ``name``, with overrides."""
    recorded = (manifest.get("wrapper") or {}).get("settings") or {}
    defaults = WrapperSpec()
    return WrapperSpec(
        name=name, image=image or recorded.get("image") or manifest.get("image") or defaults.image,
        port=port or int(recorded.get("port") or defaults.port), bind=recorded.get("bind") or defaults.bind,
        network=recorded.get("network") or defaults.network, security=recorded.get("security") or defaults.security,
        dockerd_args=tuple(recorded.get("dockerd_args") or ()), password_file=password_file)


def restore(wrapper: Wrapper, settings: Settings, archive: Path, *, force: bool = False, image: str | None = None,
            port: int | None = None, ready_timeout: float = 300.0, progress: Progress = no_progress) -> RestoreResult:
    """Verify ``archive``, load it into fresh volumes and start the wrapper from them."""
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist or is not a file")
    container = wrapper.owned(hint="restore under another --name")
    existing = wrapper.existing_volumes()
    if (existing or container is not None) and not force:
        what = ", ".join(existing) if existing else f"container {wrapper.name}"
        raise BackupError(f"wrapper {wrapper.name} already exists ({what}): restoring would overwrite it",
                          hint="--force replaces it, or restore under another --name")

    started = time.monotonic()
    manifest = verify(archive, progress)  # nothing is touched before every checksum matched
    verify_seconds = time.monotonic() - started
    password = ensure_admin_password(settings.wrapper_state_dir)
    spec = spec_from_manifest(manifest, wrapper.name, password.path, image=image, port=port)
    if not wrapper.image_exists_on_host(spec.image):
        raise BackupError(f"image {spec.image} (recorded in the archive) is not on this engine",
                          hint="build it with `dindjobs image --offline`, or pass --image")

    if force and (existing or container is not None):
        progress(f"--force: removing wrapper {wrapper.name} and its volumes")
        wrapper.down(remove_volumes=True, strict=True, progress=progress)
    started = time.monotonic()
    wrapper.ensure_volumes(progress)
    replay = Replay(archive, manifest, progress)
    try:
        with wrapper.loader(spec.image) as put:
            for volume in manifest["volumes"]:
                progress(f"restoring {volume['path']} ({volume['entries']} entries)")
                put(str(PurePosixPath(volume["path"]).parent), replay.volume(volume["top"]))
    except BaseException:
        wrapper.down(remove_volumes=True, strict=True, progress=progress)  # half-filled volumes would look like a restored wrapper
        raise
    finally:
        replay.close()
    restore_seconds = time.monotonic() - started

    result = wrapper.up(spec, progress=progress)
    client = Jenkins(jenkins_settings(settings, wrapper.url, password.path), timeout=min(settings.timeout, 10.0))
    try:
        _wait_back(wrapper, client, ready_timeout, progress)
        builds = client.job_builds(all_builds=True)
    finally:
        client.close()
    data_bytes = sum(v["bytes"] for v in manifest["volumes"])
    return RestoreResult(
        name=wrapper.name, path=str(archive), url=result.url, security=result.security, data_bytes=data_bytes,
        entries=len(manifest["files"]), verify_seconds=round(verify_seconds, 3),
        restore_seconds=round(restore_seconds, 3), mb_per_s=_rate(data_bytes, restore_seconds),
        jobs=len(builds), builds=sum(len(b) for b in builds.values()),
        nested_images=_nested_image_count(wrapper), notes=result.notes, password_file=str(password.path),
        password_source=password.source)


def _nested_image_count(wrapper: Wrapper) -> int | None:
    code, out = wrapper.nested_docker("image", "ls", "-q", "--no-trunc")
    return len(set(out.split())) if code == 0 else None
