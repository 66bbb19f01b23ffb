"""Execute a plan: folders before their contents, a bounded worker pool, past failures.

Writes run level by level (top-level items, then one folder level down, ...; views after
jobs), each level through a pool of ``workers`` threads, so a folder always exists before
anything is created in it. Removals come last, deepest first. A failed item does not stop the
others; items inside a folder that failed to be created are skipped. After every push the
ledger records the canonical hash of what Jenkins stored, so the next plan does not see Jenkins'
reformatting as a change: for a job that is the hash pushed (Jenkins keeps a job's config as
sent, up to an identity transform); a view, which Jenkins re-serialises, is read back.

A Jenkins restart is ridden out: when a request meets a restarting or starting Jenkins (503,
refused or reset connection), the worker waits until Jenkins is ready again (one wait shared by
all workers, bounded by ``ready_timeout``), re-reads the item whose outcome is unknown (a create
may have landed before the restart) and carries on. A ``stop`` event (set on SIGINT/SIGTERM)
lets the requests in flight finish and starts no new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby

from dindjobs.errors import (
    JenkinsAPIError,
    JenkinsConnectionError,
    JenkinsError,
    JenkinsNotFoundError,
    JenkinsNotReadyError,
    TimeoutExpired,
)
from dindjobs.jenkins.client import Jenkins
from dindjobs.jenkins.readiness import wait_ready
from dindjobs.jobs.canonical import as_jenkins_stores, canonical, digest, fingerprint
from dindjobs.jobs.items import item_key, kind_of
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.plan import REMOVALS, WRITES, Action, Change, Plan


@dataclass
class ItemResult:
    """How one item of the plan went."""

    kind: str
    name: str
    action: str
    result: str  # "ok", "failed" or "skipped"
    reason: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "action": self.action, "result": self.result,
                "reason": self.reason, "seconds": round(self.seconds, 3)}


@dataclass
class ApplyResult:
    """Every item that needed something, in the order it was handled."""

    items: list[ItemResult] = field(default_factory=list)
    unchanged: int = 0
    interrupted: bool = False  # a stop was requested: some items were not sent
    restarts: int = 0  # Jenkins restarts waited out during the run

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.items if r.result != "ok"]

    def summary_line(self) -> str:
        ok = sum(r.result == "ok" for r in self.items)
        failed = sum(r.result == "failed" for r in self.items)
        skipped = sum(r.result == "skipped" for r in self.items)
        line = f"Applied {ok}, failed {failed}, skipped {skipped}, unchanged {self.unchanged}."
        if self.interrupted:
            line += f" Interrupted: {sum(r.reason == NOT_SENT for r in self.items)} not applied."
        return line

    def to_json(self) -> dict:
        return {"summary": {"ok": sum(r.result == "ok" for r in self.items),
                            "failed": sum(r.result == "failed" for r in self.items),
                            "skipped": sum(r.result == "skipped" for r in self.items),
                            "unchanged": self.unchanged},
                "items": [r.to_json() for r in self.items]}


def _stages(changes: list[Change]) -> list[list[Change]]:
    """Groups that must finish one after the other; items inside a group run in parallel."""
    writes = [c for c in changes if c.action in WRITES]
    removals = [c for c in changes if c.action in REMOVALS]
    def write_step(change: Change) -> tuple[int, int]:
        return kind_of(change.kind).rank, change.depth

    def removal_step(change: Change) -> tuple[int, int]:
        return -kind_of(change.kind).rank, -change.depth

    stages = [list(group) for _, group in groupby(sorted(writes, key=write_step), key=write_step)]
    stages += [list(group) for _, group in groupby(sorted(removals, key=removal_step), key=removal_step)]
    return stages


NOT_SENT = "not applied: interrupted before it was sent"
DEFAULT_READY_TIMEOUT = 300.0


class Recovery:
    """Waits for a restarting Jenkins once for every worker that met the restart."""

    def __init__(self, client: Jenkins, timeout: float, stop: threading.Event,
                 on_progress: Callable[[str], None] | None = None) -> None:
        self.client = client
        self.timeout = timeout
        self.stop = stop
        self.on_progress = on_progress
        self.restarts = 0
        self._lock = threading.Lock()
        self._ready_at = 0.0

    def wait(self, failed_at: float, cause: JenkinsError) -> None:
        """Return once Jenkins is ready again (at once if another worker saw it ready after
        ``failed_at``); raises TimeoutExpired, or Stopped when a stop is requested."""
        with self._lock:
            if self._ready_at > failed_at:
                return
            self.restarts += 1
            if self.on_progress is not None:
                self.on_progress(f"Jenkins is not available ({cause.one_line()}): waiting until it is ready")

            def sleep(seconds: float) -> None:
                if self.stop.wait(seconds):
                    raise Stopped()

            wait_ready(self.client, self.timeout, on_progress=None, sleep=sleep)
            self._ready_at = time.monotonic()
            if self.on_progress is not None:
                self.on_progress("Jenkins is ready again: re-reading the items in flight and carrying on")


class Stopped(Exception):
    """A stop was requested while waiting for Jenkins."""


def restarting(exc: JenkinsError) -> bool:
    """True when ``exc`` says Jenkins is (re)starting or unreachable, not that the request was wrong."""
    if isinstance(exc, (JenkinsNotReadyError, JenkinsConnectionError)):
        return True
    return isinstance(exc, JenkinsAPIError) and exc.status in (502, 503, 504)


def apply_plan(plan: Plan, client: Jenkins, ledger: Ledger, *, workers: int = 4,
               on_result: Callable[[ItemResult, int, int], None] | None = None,
               stop: threading.Event | None = None, ready_timeout: float = DEFAULT_READY_TIMEOUT,
               on_progress: Callable[[str], None] | None = None) -> ApplyResult:
    """Carry out every create/update/drifted/delete/disable of ``plan``; never raises per item.

    ``on_result(result, done, total)`` is called as each item finishes. Conflicts are reported
    as skipped. Unchanged items that the ledger should learn about are recorded without any
    request. Each write is journaled in the ledger as it happens; the caller saves (folds) it.
    Once ``stop`` is set no new request is started; the items left are reported as not applied.
    """
    stop = stop or threading.Event()
    result = ApplyResult()
    recovery = Recovery(client, ready_timeout, stop, on_progress)
    actionable = [c for c in plan.changes if c.action in (*WRITES, *REMOVALS, Action.CONFLICT)]
    total = len(actionable)
    done = 0
    failed_folders: set[str] = set()
    report_lock = threading.Lock()

    def report(item: ItemResult) -> None:
        nonlocal done
        with report_lock:
            done += 1
            result.items.append(item)
            if on_result is not None:
                on_result(item, done, total)

    for kind, name in plan.stale:
        ledger.forget(kind, name)  # gone from Jenkins: a later item of that name is not ours
    for change in plan.changes:
        if change.action is Action.UNCHANGED:
            result.unchanged += 1
            if change.record is not None:
                ledger.record(change.kind, change.name, **change.record)
        elif change.action is Action.CONFLICT:
            report(ItemResult(change.kind, change.name, change.action.value, "skipped", change.reason))

    def run(change: Change) -> ItemResult:
        item = _run(change, client, ledger, recovery)
        if item.result == "failed" and kind_of(item.kind).nested and item.action in _WRITE_NAMES:
            failed_folders.add(item_key(item.kind, item.name)[1])
        report(item)
        return item

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dindjobs-apply") as pool:
        for stage in _stages(plan.changes):
            runnable = []
            for change in stage:
                blocked = _failed_ancestor(change, failed_folders)
                if stop.is_set():
                    report(ItemResult(change.kind, change.name, change.action.value, "skipped", NOT_SENT))
                elif blocked:
                    report(ItemResult(change.kind, change.name, change.action.value, "skipped",
                                      f"folder {blocked!r} could not be created or updated"))
                else:
                    runnable.append(change)
            list(pool.map(run, runnable))
    result.interrupted = stop.is_set()
    result.restarts = recovery.restarts
    return result


_WRITE_NAMES = {a.value for a in WRITES}


def _failed_ancestor(change: Change, failed_folders: set[str]) -> str | None:
    if not kind_of(change.kind).nested or change.action not in WRITES:
        return None
    parts = item_key(change.kind, change.name)[1].split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if prefix in failed_folders:
            return prefix
    return None


def _run(change: Change, client: Jenkins, ledger: Ledger, recovery: Recovery) -> ItemResult:
    started = time.monotonic()
    action = change.action

    def outcome(result: str, reason: str) -> ItemResult:
        return ItemResult(change.kind, change.name, action.value, result, reason, time.monotonic() - started)

    if recovery.stop.is_set():
        return outcome("skipped", NOT_SENT)
    unknown = False  # True once a request of this item met a restart: it may or may not have landed
    while True:
        failed_at = time.monotonic()
        try:
            _carry_out(change, client, ledger, unknown)
            return outcome("ok", change.reason)
        except JenkinsError as exc:
            if not restarting(exc):
                return outcome("failed", exc.one_line())
            try:
                recovery.wait(failed_at, exc)
            except TimeoutExpired as timeout:
                return outcome("failed", f"{exc.one_line()}; {timeout.one_line()}")
            except JenkinsError as fatal:
                return outcome("failed", fatal.one_line())
            except Stopped:
                return outcome("failed", f"{exc.one_line()}; interrupted while waiting for Jenkins")
            unknown = True


def _carry_out(change: Change, client: Jenkins, ledger: Ledger, unknown: bool) -> None:
    kind = kind_of(change.kind)
    action = change.action
    if action in WRITES:
        xml = change.xml_to_push()
        assert xml is not None
        previous = ledger.get(change.kind, change.name)
        ledger.intend(change.kind, change.name, desired=change.desired_hash,
                      manages_disabled=change.manages_disabled)
        try:
            create = action is Action.CREATE and not (unknown and _exists(kind, client, change.name))
            (kind.create if create else kind.update)(client, change.name, xml)
        except JenkinsError as exc:
            if not restarting(exc):
                ledger.restore(change.kind, change.name, previous)  # Jenkins refused it: nothing landed
            raise
        if kind.stores_as_pushed:
            _record_pushed(change, xml, ledger)
        else:
            _read_back(change, client, ledger, desired=change.desired_hash)
    elif action is Action.DELETE:
        try:
            kind.delete(client, change.name)
        except JenkinsNotFoundError:
            if not unknown:
                raise  # gone before we asked: someone else removed it
        ledger.forget(change.kind, change.name)
    elif action is Action.DISABLE:
        kind.disable(client, change.name)
        _read_back(change, client, ledger, desired=None)


def _exists(kind, client: Jenkins, name: str) -> bool:
    try:
        kind.read(client, name)
    except JenkinsNotFoundError:
        return False
    return True


def _record_pushed(change: Change, pushed: str, ledger: Ledger) -> None:
    """Record a push without reading it back: Jenkins stored ``pushed`` up to its identity
    transform, whose canonical form is the one planned (``disabled`` aside when the YAML leaves
    it to Jenkins, and then it is not compared). Its bytes are predicted for the fingerprint; a
    wrong guess only makes the next sync parse this item once."""
    ledger.record(change.kind, change.name, desired=change.desired_hash, stored=change.desired_hash,
                  manages_disabled=change.manages_disabled,
                  fingerprint=fingerprint(change.rendered_signature, as_jenkins_stores(pushed))
                  if change.rendered_signature else None)


def _read_back(change: Change, client: Jenkins, ledger: Ledger, desired: str | None) -> None:
    kind = kind_of(change.kind)
    stored = kind.read(client, change.name)
    drop = () if change.manages_disabled or not kind.has_disabled else ("disabled",)
    if desired is None:
        previous = ledger.get(change.kind, change.name) or {}
        desired = previous.get("desired")
    ledger.record(change.kind, change.name, desired=desired, stored=digest(canonical(stored, drop)),
                  manages_disabled=change.manages_disabled,
                  fingerprint=fingerprint(change.rendered_signature, stored) if change.rendered_signature else None)
