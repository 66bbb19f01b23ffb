"""Execute a plan: folders before their contents, a bounded worker pool, past failures.

Writes run level by level (top-level items, then one folder level down, ...; views after
jobs), each level through a pool of ``workers`` threads, so a folder always exists before
anything is created in it. Removals come last, deepest first. A failed item does not stop the
others; items inside a folder that failed to be created are skipped. After every push the
stored config is read back and its canonical hash goes to the ledger, so the next plan does not
see Jenkins' reformatting as a change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby

from dindjobs.errors import JenkinsError
from dindjobs.jenkins.client import Jenkins
from dindjobs.jobs.canonical import canonical, digest, fingerprint
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

    @property
    def failed(self) -> list[ItemResult]:
        return [r for r in self.items if r.result != "ok"]

    def summary_line(self) -> str:
        ok = sum(r.result == "ok" for r in self.items)
        failed = sum(r.result == "failed" for r in self.items)
        skipped = sum(r.result == "skipped" for r in self.items)
        return f"Applied {ok}, failed {failed}, skipped {skipped}, unchanged {self.unchanged}."

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


def apply_plan(plan: Plan, client: Jenkins, ledger: Ledger, *, workers: int = 4,
               on_result: Callable[[ItemResult, int, int], None] | None = None) -> ApplyResult:
    """Carry out every create/update/drifted/delete/disable of ``plan``; never raises per item.

    ``on_result(result, done, total)`` is called as each item finishes. Conflicts are reported
    as skipped. Unchanged items that the ledger should learn about are recorded without any
    request. The ledger is updated in memory; the caller saves it.
    """
    result = ApplyResult()
    actionable = [c for c in plan.changes if c.action in (*WRITES, *REMOVALS, Action.CONFLICT)]
    total = len(actionable)
    done = 0
    failed_folders: set[str] = set()

    def report(item: ItemResult) -> None:
        nonlocal done
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

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dindjobs-apply") as pool:
        for stage in _stages(plan.changes):
            runnable = []
            for change in stage:
                blocked = _failed_ancestor(change, failed_folders)
                if blocked:
                    report(ItemResult(change.kind, change.name, change.action.value, "skipped",
                                      f"folder {blocked!r} could not be created or updated"))
                else:
                    runnable.append(change)
            for item in pool.map(lambda c: _run(c, client, ledger), runnable):
                if item.result == "failed" and kind_of(item.kind).nested and item.action in _WRITE_NAMES:
                    failed_folders.add(item_key(item.kind, item.name)[1])
                report(item)
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


def _run(change: Change, client: Jenkins, ledger: Ledger) -> ItemResult:
    started = time.monotonic()
    action = change.action
    try:
        if action in WRITES:
            _push(change, client, ledger)
        elif action is Action.DELETE:
            kind_of(change.kind).delete(client, change.name)
            ledger.forget(change.kind, change.name)
        elif action is Action.DISABLE:
            kind_of(change.kind).disable(client, change.name)
            _read_back(change, client, ledger, desired=None)
    except JenkinsError as exc:
        return ItemResult(change.kind, change.name, action.value, "failed", exc.one_line(),
                          time.monotonic() - started)
    return ItemResult(change.kind, change.name, action.value, "ok", change.reason, time.monotonic() - started)


def _push(change: Change, client: Jenkins, ledger: Ledger) -> None:
    assert change.push_xml is not None
    kind = kind_of(change.kind)
    (kind.create if change.action is Action.CREATE else kind.update)(client, change.name, change.push_xml)
    _read_back(change, client, ledger, desired=change.desired_hash)


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
