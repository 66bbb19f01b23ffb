"""`dindjobs verify`: the builds ran, and ran in the wrapper's nested Docker daemon.

For each selected job: trigger it (parameterized jobs through ``buildWithParameters`` with
their default values), follow the queue item to its build (quiet period, blocked, coalesced,
cancelled, expired item), stream the console while it runs, and wait for ``inProgress:false``
before trusting the log. Then check the evidence the job printed on ``DINDJOBS-EVIDENCE`` lines
against the wrapper (exec inside it) and the host engine. A check that could not be made is
``skip``, never ``pass``. The proofs are :mod:`dindjobs.verify.nesting`, the report types
:mod:`dindjobs.verify.report`.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dindjobs.errors import DindjobsError, JenkinsError, JenkinsNotFoundError
from dindjobs.jenkins.identity import PIPELINE_CLASS, PIPELINE_ON_STANDIN
from dindjobs.jobs.render import render
from dindjobs.verify.nesting import Nesting
from dindjobs.verify.report import ANNOTATION, JobReport, VerifyReport, diagnose, parse_evidence

Line = Callable[[str, str], None]  # (job, console line)
State = Callable[[str, str], None]  # (job, state text)


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each phase: in the queue, building, and finishing the log."""

    queue: float = 600.0
    build: float = 600.0
    log: float = 60.0


# --- selecting jobs --------------------------------------------------------------------------

def select_jobs(client, paths: Sequence[str] = (), pattern: str | None = None,
                conf_path=None) -> list[str]:
    """Build jobs to verify: the (non-folder) jobs rendered from ``paths``, else every live job;
    filtered by the glob ``pattern`` on full names. Raises when nothing is selected."""
    if paths:
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
            if self._pipeline_on_standin():
                self.report.skipped = PIPELINE_ON_STANDIN
                self.state("skipped: " + PIPELINE_ON_STANDIN)
                return self.report
            number = self._trigger() if trigger else self._last_build()
            if number is not None:
                self._follow(number)
        except JenkinsError as exc:
            self.report.reason = exc.one_line()
        finally:
            self.report.wall = self.clock() - start
        return self.report

    def _pipeline_on_standin(self) -> bool:
        """A Pipeline job on the dindjobs stand-in, which stores pipelines but cannot run them."""
        cls = self.client.job_info(self.job, tree="name").get("_class")  # the answer also says who answered
        return cls == PIPELINE_CLASS and bool(getattr(self.client, "standin", None))

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
        lines = (self._partial + ANNOTATION.sub("", text)).split("\n")
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
