"""What `dindjobs verify` found: evidence lines, checks, per-job and whole-run reports.

Pure data and parsing (no I/O), so the CLI, ``--json`` and tests share one shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from dindjobs.errors import ExitCode

EVIDENCE_MARK = "DINDJOBS-EVIDENCE"
_EVIDENCE = re.compile(rf"^{EVIDENCE_MARK}\s+(daemon-id|image-id|tag)=(\S*)\s*$")
ANNOTATION = re.compile(r"\x1b\[8mha:[^\x1b]*\x1b\[0m")  # hidden console annotations
NESTED_SOCKET = "unix:///var/run/docker.sock"
TAIL_LINES = 20
PASS, FAIL, SKIP = "pass", "fail", "skip"


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
    for raw in ANNOTATION.sub("", text).splitlines():
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
    skipped: str | None = None  # why it was not run at all (never counted as proved)
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
        lines = [line for line in ANNOTATION.sub("", self.log).splitlines() if line.strip()]
        return lines[-TAIL_LINES:]

    def proof_text(self) -> str:
        """``held (5/5)``, ``FAILED: ...`` or ``skipped: ...`` for the report table."""
        if self.skipped:
            return f"skipped: {self.skipped}"
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
            "ok": self.ok, "skipped": self.skipped, "reason": self.reason, "evidence": self.evidence.to_json(),
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
        """Every job that could run was proved, and at least one was (skipped jobs prove nothing)."""
        ran = [j for j in self.jobs if not j.skipped]
        return bool(ran) and all(j.ok for j in ran)

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
        not_run = sum(bool(j.skipped) for j in self.jobs)
        if not_run:
            text += f"; {not_run} skipped (not run, not counted as proved)"
        return text

    def to_json(self) -> dict:
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "overhead_seconds": self.overhead,
                "nested_daemon_id": self.nested_daemon_id, "host_daemon_id": self.host_daemon_id,
                "jobs": [j.to_json() for j in self.jobs]}


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
