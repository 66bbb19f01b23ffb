"""`dindjobs verify`: the builds ran, and ran in the wrapper's nested Docker daemon.

For each selected job: trigger it (parameterized jobs through ``buildWithParameters`` with
their default values), follow the queue item to its build (quiet period, blocked, coalesced,
cancelled, expired item), stream the console while it runs, and wait for ``inProgress:false``
before trusting the log. Then check the evidence the job printed on ``DINDJOBS-EVIDENCE`` lines
against the wrapper (exec inside it) and the host engine. A check that could not be made is
``skip``, never ``pass``.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dindjobs.errors import DindjobsError, ExitCode, JenkinsError, JenkinsNotFoundError

EVIDENCE_MARK = "DINDJOBS-EVIDENCE"
_EVIDENCE = re.compile(rf"^{EVIDENCE_MARK}\s+(daemon-id|image-id|tag)=(\S*)\s*$")
_NOTE = re.compile(r"\x1b\[8mha:[^\x1b]*\x1b\[0m")  # hidden console annotations
NESTED_SOCKET = "unix:///var/run/docker.sock"
TAIL_LINES = 20
PASS, FAIL, SKIP = "pass", "fail", "skip"

Line = Callable[[str, str], None]  # (job, console line)
State = Callable[[str, str], None]  # (job, state text)


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each phase: in the queue, building, and finishing the log."""

    queue: float = 600.0
    build: float = 600.0
    log: float = 60.0


@dataclass
class Evidence:
    """What a job printed about where it built: daemon ID, image ID, tag (None if absent)."""

    daemon_id: str | None = None
    image_id: str | None = None
    tag: str | None = None
    conflicts: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"daemon_id": self.daemon_id, "image_id": self.image_id, "tag": self.tag,
                "conflicts": self.conflicts}


def parse_evidence(text: str) -> Evidence:
    """Evidence from a console log: only lines that start with the marker count.

    ``sh -x`` trace lines (``+ echo DINDJOBS-EVIDENCE ...``) are ignored. A key printed twice
    with different values is a conflict (recorded; the last value wins).
    """
    evidence = Evidence()
    attrs = {"daemon-id": "daemon_id", "image-id": "image_id", "tag": "tag"}
    for raw in _NOTE.sub("", text).splitlines():
        match = _EVIDENCE.match(raw.strip())
        if not match or not match.group(2):
            continue
        attr, value = attrs[match.group(1)], match.group(2)
        old = getattr(evidence, attr)
        if old is not None and old != value:
            evidence.conflicts.append(f"{match.group(1)} printed as {old} and as {value}")
        setattr(evidence, attr, value)
    return evidence


@dataclass
class Check:
    """One nesting proof: ``pass``, ``fail`` or ``skip``, and why."""

    name: str
    status: str
    detail: str

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass
class JobReport:
    """What happened to one job: its build, result, evidence and proofs."""

    job: str
    build: int | None = None
    queue_id: int | None = None
    url: str | None = None
    result: str | None = None
    seconds: float | None = None  # the build's own duration, as Jenkins measured it
    started: float | None = None  # the build's start, epoch seconds (Jenkins' timestamp)
    wall: float = 0.0  # our time for this job, trigger to final log
    reason: str | None = None  # why it failed, in one line
    evidence: Evidence = field(default_factory=Evidence)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    log: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return (self.result == "SUCCESS" and self.reason is None and bool(self.checks)
                and all(c.status == PASS for c in self.checks))

    @property
    def console_tail(self) -> list[str]:
        lines = [line for line in _NOTE.sub("", self.log).splitlines() if line.strip()]
        return lines[-TAIL_LINES:]

    def proof_text(self) -> str:
        """``held (5/5)``, ``FAILED: ...`` or ``skipped: ...`` for the report table."""
        if not self.checks:
            return "not checked" if self.result == "SUCCESS" or self.result is None else "not checked (build failed)"
        failed = [c.name for c in self.checks if c.status == FAIL]
        skipped = [c.name for c in self.checks if c.status == SKIP]
        if failed:
            return "FAILED: " + ", ".join(failed)
        if skipped:
            return f"{len(self.checks) - len(skipped)}/{len(self.checks)} held; skipped: " + ", ".join(skipped)
        return f"held ({len(self.checks)}/{len(self.checks)})"

    def to_json(self) -> dict:
        return {
            "job": self.job, "build": self.build, "queue_id": self.queue_id, "url": self.url,
            "result": self.result, "seconds": self.seconds, "started": self.started,
            "wall_seconds": round(self.wall, 3),
            "ok": self.ok, "reason": self.reason, "evidence": self.evidence.to_json(),
            "checks": [c.to_json() for c in self.checks], "notes": self.notes,
            "console_tail": [] if self.ok else self.console_tail,
        }


@dataclass
class VerifyReport:
    """Every job's report, the run's wall time and the daemons compared against."""

    jobs: list[JobReport]
    seconds: float = 0.0
    nested_daemon_id: str | None = None
    host_daemon_id: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.jobs) and all(j.ok for j in self.jobs)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.ERROR

    @property
    def overhead(self) -> float | None:
        """Our wall time minus the time during which at least one of the builds ran."""
        spans = sorted((j.started, j.started + j.seconds) for j in self.jobs
                       if j.started is not None and j.seconds is not None)
        if not spans:
            return None
        busy, end = 0.0, float("-inf")
        for begin, finish in spans:
            busy += max(0.0, finish - max(begin, end))
            end = max(end, finish)
        return round(self.seconds - busy, 3)

    def summary_line(self) -> str:
        good = sum(j.ok for j in self.jobs)
        skipped = sum(any(c.status == SKIP for c in j.checks) for j in self.jobs)
        text = f"{good}/{len(self.jobs)} jobs built and proved nested in {self.seconds:.1f} s"
        if skipped:
            text += f"; {skipped} with skipped checks (not counted as proved)"
        return text

    def to_json(self) -> dict:
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "overhead_seconds": self.overhead,
                "nested_daemon_id": self.nested_daemon_id, "host_daemon_id": self.host_daemon_id,
                "jobs": [j.to_json() for j in self.jobs]}


# --- selecting jobs --------------------------------------------------------------------------

def select_jobs(client, paths: Sequence[str] = (), pattern: str | None = None,
                conf_path=None) -> list[str]:
    """Build jobs to verify: the (non-folder) jobs rendered from ``paths``, else every live job;
    filtered by the glob ``pattern`` on full names. Raises when nothing is selected."""
    if paths:
        from dindjobs.render import render

        names = [item.name for item in render(paths, conf_path=conf_path).jobs if not item.is_folder]
        where = "in " + ", ".join(str(p) for p in paths)
    else:
        names = sorted((item.name for item in client.list_items().jobs.values() if not item.is_folder),
                       key=str.lower)
        where = f"on {client.url}"
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        where += f" matching {pattern!r}"
    if not names:
        raise DindjobsError(f"no build jobs {where}")
    return names


# --- following one build ----------------------------------------------------------------------

class _Follow:
    """Follows one job from trigger to final log; every wait is bounded by its phase timeout."""

    def __init__(self, client, job: str, timeouts: Timeouts, on_line: Line | None, on_state: State | None,
                 interval: float, clock: Callable[[], float], sleep: Callable[[float], None],
                 delay: float | None = None) -> None:
        self.client, self.job, self.timeouts, self.delay = client, job, timeouts, delay
        self.on_line, self.on_state = on_line, on_state
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self.report = JobReport(job)
        self._state = ""
        self._partial = ""

    def state(self, text: str) -> None:
        if text != self._state:
            self._state = text
            if self.on_state is not None:
                self.on_state(self.job, text)

    def run(self, trigger: bool) -> JobReport:
        start = self.clock()
        try:
            number = self._trigger() if trigger else self._last_build()
            if number is not None:
                self._follow(number)
        except JenkinsError as exc:
            self.report.reason = exc.one_line()
        finally:
            self.report.wall = self.clock() - start
        return self.report

    def _trigger(self) -> int | None:
        info = self.client.job_info(self.job, tree=f"{PARAM_TREE},queueItem[id]")
        queue_id = self.client.trigger(self.job, default_parameters(info), delay=self.delay)
        self.report.queue_id = queue_id
        if (info.get("queueItem") or {}).get("id") == queue_id:
            # Jenkins coalesces a trigger into the item already waiting for the job.
            self.report.notes.append(f"joined queue item {queue_id}, already waiting before the trigger")
        return self._await_queue(queue_id)

    def _last_build(self) -> int | None:
        last = self.client.job_info(self.job, tree="lastBuild[number]").get("lastBuild")
        if not last:
            self.report.reason = "never built: nothing to check with --no-trigger (run verify without it)"
            return None
        return int(last["number"])

    def _await_queue(self, queue_id: int) -> int | None:
        deadline = self.clock() + self.timeouts.queue
        while True:
            try:
                item = self.client.queue_item(queue_id)
            except JenkinsNotFoundError:
                # Jenkins forgets a left item 5 minutes after its build started.
                number = self._build_of_queue_item(queue_id)
                if number is not None:
                    self.report.notes.append(f"queue item {queue_id} expired; found build #{number} by queueId")
                    return number
                self.report.reason = f"queue item {queue_id} disappeared and no build of {self.job} has that queueId"
                return None
            if item.get("cancelled"):
                self.report.result = "CANCELLED"
                self.report.reason = f"queue item {queue_id} was cancelled before it started"
                return None
            executable = item.get("executable")
            if executable and executable.get("number") is not None:
                return int(executable["number"])
            kind = str(item.get("_class", "")).rsplit("$", 1)[-1] or "queued"
            self.state(f"{kind}: {item.get('why') or 'starting'}")
            if self.clock() >= deadline:
                self.report.reason = (f"still in the queue after {self.timeouts.queue:g} s "
                                      f"(queue item {queue_id}: {item.get('why') or kind})")
                return None
            self.sleep(self.interval)

    def _build_of_queue_item(self, queue_id: int) -> int | None:
        builds = self.client.job_info(self.job, tree="builds[number,queueId]").get("builds") or []
        return next((int(b["number"]) for b in builds if b.get("queueId") == queue_id), None)

    def _follow(self, number: int) -> None:
        report = self.report
        report.build = number
        self.state(f"build #{number} started")
        offset, more = 0, True
        deadline = self.clock() + self.timeouts.build
        while True:
            offset, more = self._read_log(number, offset)
            info = self.client.build_info(self.job, number)
            report.url = info.get("url")
            # `building` turns false before the log is complete; `inProgress` does not.
            if not info.get("inProgress", info.get("building", False)):
                break
            if self.clock() >= deadline:
                report.reason = f"build #{number} still running after {self.timeouts.build:g} s (left running)"
                return
            self.sleep(self.interval)
        report.result = info.get("result")
        report.seconds = round((info.get("duration") or 0) / 1000, 3)
        report.started = (info.get("timestamp") or 0) / 1000 or None
        deadline = self.clock() + self.timeouts.log
        while True:
            offset, more = self._read_log(number, offset)
            if not more:
                break
            if self.clock() >= deadline:
                report.notes.append(f"log still incomplete after {self.timeouts.log:g} s")
                break
            self.sleep(self.interval)
        self._emit("", final=True)
        report.evidence = parse_evidence(report.log)
        self.state(f"build #{number}: {report.result}")
        if report.result != "SUCCESS":
            report.reason = diagnose(report.result, report.console_tail)

    def _read_log(self, number: int, offset: int) -> tuple[int, bool]:
        text, offset, more = self.client.progressive_log(self.job, number, offset)
        if text:
            self.report.log += text
            self._emit(text)
        return offset, more

    def _emit(self, text: str, final: bool = False) -> None:
        if self.on_line is None:
            return
        lines = (self._partial + _NOTE.sub("", text)).split("\n")
        self._partial = "" if final else lines.pop()
        for line in lines:
            if line or not final:
                self.on_line(self.job, line.rstrip("\r"))


PARAM_TREE = "property[parameterDefinitions[name,defaultParameterValue[value]]]"


def default_parameters(job_info: dict) -> dict[str, str] | None:
    """``{name: default}`` for a parameterized job (sent to buildWithParameters), else None."""
    params: dict[str, str] = {}
    found = False
    for prop in job_info.get("property") or []:
        for definition in prop.get("parameterDefinitions") or []:
            found = True
            value = (definition.get("defaultParameterValue") or {}).get("value")
            if isinstance(value, bool):
                value = "true" if value else "false"
            params[definition["name"]] = "" if value is None else str(value)
    return params if found else None


_CANNOT_CONNECT = re.compile(r"Cannot connect to the Docker daemon at (\S+?)\.?(\s|$)")
_DIAL = re.compile(r"error during connect: .*?dial (?:tcp|unix) (\S+?): ")
_FAILURE_LINE = re.compile(r"(?i)(error|failed|returned a non-zero code|unknown instruction)")


def diagnose(result: str | None, tail: Sequence[str]) -> str:
    """One line saying why a build failed, from the end of its console."""
    head = f"build {result or 'ended without a result'}"
    for line in reversed(tail):
        match = _CANNOT_CONNECT.search(line) or _DIAL.search(line)
        if match:
            where = match.group(1)
            if where.rstrip("/") != NESTED_SOCKET:
                return (f"{head}: the job could not reach a Docker daemon at {where}; builds must use the "
                        f"wrapper's nested daemon at {NESTED_SOCKET} (is DOCKER_HOST overridden?)")
            return f"{head}: the nested Docker daemon at {where} did not answer"
        if "permission denied while trying to connect to the Docker daemon" in line:
            return f"{head}: the jenkins user may not use the nested daemon's socket (group docker)"
    for line in reversed(tail):
        if _FAILURE_LINE.search(line) and not line.startswith("+ ") and not line.startswith("Finished:"):
            return f"{head}: {line.strip()}"
    return head


# --- proving nesting --------------------------------------------------------------------------

class Nesting:
    """Checks a job's evidence against the wrapper's nested daemon and the host engine.

    ``wrapper`` is a :class:`dindjobs.wrapper.Wrapper` (or None with ``unreachable`` saying why:
    then every check is skipped). Daemon IDs are asked once and reused for every job.
    """

    def __init__(self, wrapper, unreachable: str | None = None) -> None:
        self.wrapper = wrapper
        self.unreachable = unreachable
        self.nested_id: str | None = None
        self.nested_error: str | None = None
        self.host_id: str | None = None
        self.host_error: str | None = None
        if wrapper is None:
            self.nested_error = self.host_error = unreachable or "no wrapper"
            return
        self.nested_id, self.nested_error = _ask(wrapper.nested_daemon_id)
        self.host_id, self.host_error = _ask(wrapper.host_daemon_id)

    def prove(self, evidence: Evidence) -> list[Check]:
        """The five proofs for one job's evidence."""
        checks = [self._daemon_printed(evidence)]
        daemon = evidence.daemon_id
        if daemon is None:
            checks.append(Check("nested daemon", FAIL, "no daemon-id evidence to compare"))
        elif self.nested_id is None:
            checks.append(Check("nested daemon", SKIP, f"nested daemon ID unknown: {self.nested_error}"))
        elif daemon == self.nested_id:
            checks.append(Check("nested daemon", PASS, f"job's daemon {daemon} is the nested daemon"))
        else:
            checks.append(Check("nested daemon", FAIL,
                                f"job's daemon {daemon} is not the nested daemon {self.nested_id}"))
        if daemon is None:
            checks.append(Check("not host daemon", FAIL, "no daemon-id evidence to compare"))
        elif self.host_id is None:
            checks.append(Check("not host daemon", SKIP, f"host daemon not reachable: {self.host_error}"))
        elif daemon == self.host_id:
            checks.append(Check("not host daemon", FAIL, f"the job built on the HOST daemon {daemon}"))
        else:
            checks.append(Check("not host daemon", PASS, f"host daemon is {self.host_id}"))
        checks.extend(self._image_checks(evidence.image_id))
        return checks

    def _daemon_printed(self, evidence: Evidence) -> Check:
        if evidence.conflicts:
            return Check("evidence", FAIL, "; ".join(evidence.conflicts))
        missing = [k for k, v in (("daemon-id", evidence.daemon_id), ("image-id", evidence.image_id))
                   if v is None]
        if missing:
            return Check("evidence", FAIL, f"no {' or '.join(missing)} line ({EVIDENCE_MARK} ...) in the console")
        return Check("evidence", PASS, f"daemon-id, image-id{', tag' if evidence.tag else ''} printed")

    def _image_checks(self, image_id: str | None) -> Iterable[Check]:
        if image_id is None:
            yield Check("image in nested", FAIL, "no image-id evidence")
            yield Check("image not on host", FAIL, "no image-id evidence")
            return
        if self.wrapper is None or self.nested_id is None:
            yield Check("image in nested", SKIP, f"nested daemon not reachable: {self.nested_error}")
        else:
            found, error = _ask(lambda: self.wrapper.image_exists_in_nested(image_id))
            if error:
                yield Check("image in nested", SKIP, f"could not ask the nested daemon: {error}")
            elif found:
                yield Check("image in nested", PASS, f"{_short(image_id)} exists in the nested daemon")
            else:
                yield Check("image in nested", FAIL, f"{_short(image_id)} does not exist in the nested daemon")
        if self.wrapper is None or self.host_id is None:
            yield Check("image not on host", SKIP, f"host daemon not reachable: {self.host_error}")
            return
        found, error = _ask(lambda: self.wrapper.image_exists_on_host(image_id))
        if error:
            yield Check("image not on host", SKIP, f"could not ask the host daemon: {error}")
        elif found:
            yield Check("image not on host", FAIL, f"{_short(image_id)} EXISTS on the host daemon")
        else:
            yield Check("image not on host", PASS, f"{_short(image_id)} is not on the host daemon")


def _ask(question: Callable[[], object]) -> tuple[object | None, str | None]:
    try:
        return question(), None
    except DindjobsError as exc:
        return None, exc.one_line()


def _short(image_id: str) -> str:
    return image_id[:19] if image_id.startswith("sha256:") else image_id[:12]


def open_nesting(name: str) -> Nesting:
    """A :class:`Nesting` for the wrapper ``name`` on the local engine (checks skipped if unreachable)."""
    from dindjobs.errors import DockerEngineError, WrapperError
    from dindjobs.wrapper import Wrapper, connect

    try:
        wrapper = Wrapper(connect(timeout=60), name)
        wrapper.running_container()
    except (DockerEngineError, WrapperError) as exc:
        return Nesting(None, exc.one_line())
    return Nesting(wrapper)


# --- the whole run ----------------------------------------------------------------------------

def verify(client, jobs: Sequence[str], nesting: Nesting, *, trigger: bool = True,
           timeouts: Timeouts = Timeouts(), delay: float | None = None, on_line: Line | None = None,
           on_state: State | None = None, interval: float = 0.25, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> VerifyReport:
    """Run (or, without ``trigger``, look at the last build of) every job in parallel, then prove
    nesting for each successful one. ``on_line(job, line)`` gets console lines as they come,
    ``on_state(job, text)`` queue and build states. ``delay`` replaces the jobs' quiet period."""
    start = clock()

    def one(job: str) -> JobReport:
        report = _Follow(client, job, timeouts, on_line, on_state, interval, clock, sleep, delay).run(trigger)
        if report.result == "SUCCESS":
            report.checks = nesting.prove(report.evidence)
        return report

    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), 8)), thread_name_prefix="verify") as pool:
        reports = list(pool.map(one, jobs))
    return VerifyReport(reports, seconds=clock() - start, nested_daemon_id=nesting.nested_id,
                        host_daemon_id=nesting.host_id)
