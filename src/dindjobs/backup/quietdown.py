"""A backup's quiet-down, remembered in the state directory so a killed backup cannot leave it on.

`dindjobs backup` puts Jenkins into quiet-down while builds drain, and ends it when it is done
(or the restart of the wrapper forgets it). A backup killed in between used to leave Jenkins
refusing every build. Before asking for quiet-down, backup writes a record (its process ID and
the container's start time) to ``<state dir>/<name>/backup-quiet-down.json``; the next
`backup`, `up` or `status` finds a record whose process is gone and cancels the quiet-down, and
forgets the record when the wrapper restarted since (Jenkins forgot it too). A quiet-down that is
not ours is shown (`status`, `doctor`) but never touched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from dindjobs.backup.archive import process_alive
from dindjobs.config import DEFAULT_USER, Settings, read_secret_file
from dindjobs.errors import JenkinsError
from dindjobs.jenkins.client import Jenkins
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.secrets import admin_password_path

RECORD = "backup-quiet-down.json"


@dataclasses.dataclass
class QuietDown:
    """Jenkins' quiet-down as `status` and `doctor` show it."""

    quieting_down: bool | None  # None: could not tell (wrapper not running, Jenkins not answering)
    ours: bool = False  # a dindjobs backup asked for it
    backup_pid: int | None = None  # that backup's process, when it still runs
    undone: bool = False  # this call cancelled a quiet-down a killed backup left
    error: str | None = None

    #: Said on stderr by the command whose check cancelled a quiet-down a killed backup left.
    UNDONE_NOTICE = "cancelled the quiet-down that a killed backup had left on: builds start again"

    def describe(self) -> str:
        """One line for a table."""
        if self.undone:
            return "no (cancelled the quiet-down a killed backup left on)"
        if self.quieting_down is None:
            return f"unknown ({self.error})" if self.error else "unknown"
        if not self.quieting_down:
            return "no"
        if self.backup_pid is not None:
            return f"yes, for the backup running as process {self.backup_pid}"
        return "yes: no build starts (not asked by dindjobs; cancel it in Jenkins)"


def jenkins_settings(settings: Settings, url: str | None, password_file: Path | None = None) -> Settings:
    """``settings`` pointed at the wrapper's own URL, with the admin password file if no credential."""
    changes: dict[str, Any] = {"url": url} if url else {}
    if settings.credential is None and password_file is not None and password_file.exists():
        changes.update(user=DEFAULT_USER, password=read_secret_file(password_file, "admin password"))
    return dataclasses.replace(settings, **changes) if changes else settings


def remember(state_dir: Path, started_at: str | None) -> None:
    """Record, before asking for it, that this process puts Jenkins into quiet-down."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / RECORD
    tmp = path.with_name(f".{RECORD}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "container_started_at": started_at}))
    os.replace(tmp, path)


def forget(state_dir: Path) -> None:
    """The quiet-down is over (cancelled, or forgotten by a restart)."""
    with contextlib.suppress(FileNotFoundError):
        (state_dir / RECORD).unlink()


def _record(state_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((state_dir / RECORD).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        record = {}  # unreadable: treat as left by a dead process
    return record if isinstance(record, dict) else {}


def _started_at(container) -> str | None:
    return (container.attrs.get("State") or {}).get("StartedAt") if container is not None else None


def check(wrapper: Wrapper, settings: Settings, *, undo: bool, only_if_recorded: bool = False) -> QuietDown | None:
    """Jenkins' quiet-down, and with ``undo`` the cancellation of one a killed backup left.

    ``only_if_recorded``: return None without asking Jenkins when no backup record exists.
    """
    state_dir = settings.wrapper_state_dir
    record = _record(state_dir)
    pid = record.get("pid") if record else None
    alive = isinstance(pid, int) and pid != os.getpid() and process_alive(pid)
    container = wrapper.container()
    running = container is not None and container.status == "running"
    if record is not None and not alive and (not running or _started_at(container) != record.get("container_started_at")):
        forget(state_dir)  # the wrapper stopped or restarted since: Jenkins forgot the quiet-down
        record = None
    if record is None and only_if_recorded:
        return None
    if not running:
        return QuietDown(None, error="the wrapper is not running")
    client = Jenkins(jenkins_settings(settings, wrapper.url, admin_password_path(state_dir)),
                     timeout=min(settings.timeout, 10.0))
    try:
        quiet = client.quieting_down()
        if record is not None and not alive:
            if quiet and undo:
                client.cancel_quiet_down()
                forget(state_dir)
                return QuietDown(False, ours=True, undone=True)
            if not quiet:
                forget(state_dir)  # someone already ended it
        return QuietDown(quiet, ours=record is not None, backup_pid=pid if alive else None)
    except JenkinsError as exc:
        return QuietDown(None, ours=record is not None, error=exc.one_line())
    finally:
        client.close()
