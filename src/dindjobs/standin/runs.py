"""Builds: running a job's ``hudson.tasks.Shell`` steps, their logs, and their persisted record.

A run lives in ``<job dir>/builds/<n>/`` (``build.xml`` and ``log``). It goes through Jenkins'
states: NOT_STARTED and BUILDING (``building`` true, ``result`` null), POST_PRODUCTION
(``building`` false but ``inProgress`` true, while ``Finished: <RESULT>`` is written), then
COMPLETED. Each shell step runs as ``sh -xe <script>`` in the workspace, in its own process
group so that ``stop`` kills the whole tree.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import secrets
import signal
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dindjobs.standin.api import Bean, Prop, Raw

log = logging.getLogger("dindjobs.standin")

NOT_STARTED, BUILDING, POST_PRODUCTION, COMPLETED = "NOT_STARTED", "BUILDING", "POST_PRODUCTION", "COMPLETED"
# Hidden console annotations (``ESC[8mha:...ESC[0m``) count in byte offsets but not in text.
_NOTE = re.compile(rb"\x1b\[8mha:[^\x1b]*\x1b\[0m")
KILL_GRACE = 5.0


def strip_notes(data: bytes) -> bytes:
    """The log without hidden annotations (what consoleText shows)."""
    return _NOTE.sub(b"", data)


def _note() -> bytes:
    return b"\x1b[8mha:////" + base64.b64encode(secrets.token_bytes(48)) + b"\x1b[0m"


class Cause(Bean):
    """Why a build was scheduled: a user (or anonymous)."""

    java_class = "hudson.model.Cause$UserIdCause"

    def __init__(self, user: str | None) -> None:
        self.user = user

    @property
    def short(self) -> str:
        return f"Started by user {self.user}" if self.user else "Started by anonymous user"

    def props(self, ctx: Any) -> list[Prop]:
        return [Prop("shortDescription", self.short, 3), Prop("userId", self.user, 3),
                Prop("userName", self.user or "anonymous", 3)]


def cause_action(causes: list[Cause]) -> Raw:
    return Raw("hudson.model.CauseAction", 2, causes=list(causes))


def parameters_action(params: list[tuple[str, str, str]]) -> Raw:
    """``params`` is a list of (name, value, value class)."""
    values = [_ParamValue(n, v, c) for n, v, c in params]
    return Raw("hudson.model.ParametersAction", 2, parameters=values)


class _ParamValue(Bean):
    def __init__(self, name: str, value: str, java_class: str) -> None:
        self.name, self.value, self.java_class = name, value, java_class

    def props(self, ctx: Any) -> list[Prop]:
        value: Any = self.value
        if self.java_class.endswith("BooleanParameterValue"):
            value = self.value == "true"
        if self.java_class.endswith("PasswordParameterValue"):
            return [Prop("name", self.name, 3)]
        return [Prop("name", self.name, 3), Prop("value", value, 4)]


class Run(Bean):
    """One build of a job."""

    java_class = "hudson.model.FreeStyleBuild"

    def __init__(self, job: Any, number: int, queue_id: int, causes: list[Cause],
                 params: list[tuple[str, str, str]], timestamp: int | None = None) -> None:
        self.job = job
        self.java_class = getattr(job, "run_class", Run.java_class)
        self.number = number
        self.queue_id = queue_id
        self.causes = causes
        self.params = params
        self.timestamp = timestamp if timestamp is not None else int(time.time() * 1000)
        self.state = NOT_STARTED
        self.result: str | None = None
        self.duration = 0
        self.workspace: Path | None = None
        self.executor_number = 0
        self.aborted_by: str | None = None
        self._proc: subprocess.Popen | None = None
        self._abort = threading.Event()

    # -- identity and paths -------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return self.job.dir / "builds" / str(self.number)

    @property
    def log_path(self) -> Path:
        return self.dir / "log"

    @property
    def url_path(self) -> str:
        return f"{self.job.url_path}{self.number}/"

    @property
    def building(self) -> bool:
        return self.state in (NOT_STARTED, BUILDING)

    @property
    def in_progress(self) -> bool:
        return self.state != COMPLETED

    def props(self, ctx: Any) -> list[Prop]:
        actions: list[Any] = [cause_action(self.causes)]
        if self.params:
            actions.append(parameters_action(self.params))
        return [
            Prop("actions", actions),
            Prop("artifacts", []),
            Prop("building", self.building),
            Prop("description", None),
            Prop("displayName", f"#{self.number}"),
            Prop("duration", self.duration),
            Prop("estimatedDuration", lambda: self.job.estimated_duration()),
            Prop("executor", Raw("hudson.model.Executor", 2, number=self.executor_number) if self.building else None),
            Prop("fullDisplayName", lambda: f"{self.job.full_display_name} #{self.number}"),
            Prop("id", str(self.number)),
            Prop("inProgress", self.in_progress),
            Prop("keepLog", False),
            Prop("number", self.number, 2),
            Prop("queueId", self.queue_id),
            Prop("result", self.result),
            Prop("timestamp", self.timestamp),
            Prop("url", lambda: ctx.root_url + self.url_path, 2),
            Prop("builtOn", ""),
            Prop("changeSet", Raw("hudson.scm.EmptyChangeLogSet", items=[], kind=None)),
            Prop("culprits", []),
        ]

    # -- logs ---------------------------------------------------------------------------------
    def console_text(self) -> bytes:
        """The whole log so far, annotations stripped (200 "No such file" if not yet there)."""
        try:
            return strip_notes(self.log_path.read_bytes())
        except FileNotFoundError:
            return f"No such file: {self.log_path}".encode()

    def progressive(self, start: int) -> tuple[bytes, int, bool]:
        """(text from byte ``start``, new offset, more data coming) for progressiveText."""
        more = self.in_progress
        try:
            raw = self.log_path.read_bytes()
        except FileNotFoundError:
            return b"", 0, True
        if start > len(raw) or start < 0:
            start = 0
        chunk = raw[start:]
        if more:
            # While the log is being written, send complete lines only.
            cut = chunk.rfind(b"\n")
            chunk = chunk[:cut + 1] if cut >= 0 else b""
        return strip_notes(chunk), start + len(chunk), more

    # -- persistence --------------------------------------------------------------------------
    def save(self) -> None:
        """Write ``build.xml`` (atomically); nothing once the job has been deleted."""
        if getattr(self.job, "deleted", False):
            return
        root = ET.Element("build")
        actions = ET.SubElement(root, "actions")
        causes = ET.SubElement(ET.SubElement(actions, "hudson.model.CauseAction"), "causes")
        for c in self.causes:
            ET.SubElement(ET.SubElement(causes, "hudson.model.Cause_-UserIdCause"), "userId").text = c.user or ""
        if self.params:
            plist = ET.SubElement(ET.SubElement(actions, "hudson.model.ParametersAction"), "parameters")
            for name, value, cls in self.params:
                pv = ET.SubElement(plist, cls)
                ET.SubElement(pv, "name").text = name
                ET.SubElement(pv, "value").text = value
        for tag, value in (("queueId", self.queue_id), ("timestamp", self.timestamp),
                           ("startTime", self.timestamp), ("result", self.result),
                           ("duration", self.duration), ("charset", "UTF-8"), ("keepLog", "false"),
                           ("builtOn", ""), ("workspace", self.workspace or ""),
                           ("hudsonVersion", self.job.version)):
            if value is not None:
                ET.SubElement(root, tag).text = str(value)
        ET.indent(root)
        text = "<?xml version='1.1' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "build.xml.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.dir / "build.xml")

    @classmethod
    def load(cls, job: Any, build_dir: Path) -> Run | None:
        """A run from ``build.xml``; one cut short by a stop or crash is marked ABORTED."""
        try:
            root = ET.parse(build_dir / "build.xml").getroot()
        except (OSError, ET.ParseError) as exc:
            log.warning("skipping build %s: %s", build_dir, exc)
            return None
        causes = [Cause(e.text or None) for e in root.iter("userId")]
        params = [(p.findtext("name") or "", p.findtext("value") or "", p.tag)
                  for p in root.findall("actions/hudson.model.ParametersAction/parameters/*")]
        run = cls(job, int(build_dir.name), int(root.findtext("queueId") or 0), causes, params,
                  int(root.findtext("timestamp") or 0))
        run.result = root.findtext("result")
        run.duration = int(root.findtext("duration") or 0)
        ws = root.findtext("workspace")
        run.workspace = Path(ws) if ws else None
        run.state = COMPLETED
        if run.result is None:
            run.result = "ABORTED"
            with open(run.log_path, "ab") as fh:
                fh.write(b"Build was aborted\nFinished: ABORTED\n")
            run.save()
        return run

    # -- execution ----------------------------------------------------------------------------
    def abort(self, by: str) -> bool:
        """Ask a running build to stop; False if it already finished."""
        if not self.building:
            return False
        self.aborted_by = by
        self._abort.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            _terminate(proc)
        return True

    def begin_log(self) -> None:
        """Write the cause lines before the run is visible, so its console is never empty."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            for cause in self.causes:
                who = (b"Started by user " + _note() + cause.user.encode()) if cause.user else \
                    b"Started by anonymous user"
                out.write(who + b"\n")

    def execute(self, steps: list[str], env: Mapping[str, str], workspace: Path,
                lock: threading.RLock, post_production_delay: float = 0.0,
                on_state: Callable[[], None] = lambda: None, release: threading.Event | None = None) -> None:
        """Run the build to completion (blocking; called on the executor's thread)."""
        self.workspace = workspace
        start = time.monotonic()
        with lock:
            if getattr(self.job, "deleted", False):
                self.result, self.state = "ABORTED", COMPLETED
                return
            self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab", buffering=0) as out:
            with lock:
                self.state = BUILDING
                self.save()
            out.write(b"Running as SYSTEM\n")
            refusal = getattr(self.job, "build_refusal", None)
            if refusal:
                out.write(f"ERROR: {refusal}\n".encode())
                steps = []
            else:
                out.write(f"Building in workspace {workspace}\n".encode())
            result = "NOT_BUILT" if refusal else "SUCCESS"
            try:
                workspace.mkdir(parents=True, exist_ok=True)
                for command in steps:
                    if self._abort.is_set():
                        break
                    code = self._shell_step(command, env, workspace, out)
                    if self._abort.is_set():
                        break
                    if code != 0:
                        out.write(b"Build step 'Execute shell' marked build as failure\n")
                        result = "FAILURE"
                        break
            except OSError as exc:
                out.write(f"FATAL: {exc}\n".encode())
                result = "FAILURE"
            if self._abort.is_set():
                out.write(f"Build was aborted\nAborted by {self.aborted_by}\n".encode())
                result = "ABORTED"
            with lock:
                self.result = result
                self.duration = max(1, int((time.monotonic() - start) * 1000))
                self.state = POST_PRODUCTION
            on_state()
            if post_production_delay:
                (release or threading.Event()).wait(post_production_delay)
            out.write(f"Finished: {result}\n".encode())
        with lock:
            self.state = COMPLETED
            self.save()
        on_state()

    def _shell_step(self, command: str, env: Mapping[str, str], workspace: Path, out) -> int:
        fd, script = tempfile.mkstemp(prefix="jenkins", suffix=".sh")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(command.replace("\r\n", "\n"))
            if command.startswith("#!"):
                argv = command[2:].splitlines()[0].split() + [script]
            else:
                argv = ["/bin/sh", "-xe", script]
            out.write(f"[{workspace.name}] $ {' '.join(argv)}\n".encode())
            proc = subprocess.Popen(argv, cwd=workspace, env=dict(env), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self._proc = proc
            if self._abort.is_set():
                _terminate(proc)
            return proc.wait()
        finally:
            self._proc = None
            os.unlink(script)


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM to the step's process group, SIGKILL if it is still there after a grace period."""
    _kill_group(proc, signal.SIGTERM)

    def finish() -> None:
        if proc.poll() is None:
            _kill_group(proc, signal.SIGKILL)

    timer = threading.Timer(KILL_GRACE, finish)
    timer.daemon = True
    timer.start()


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
