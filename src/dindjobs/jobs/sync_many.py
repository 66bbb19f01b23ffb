"""Sync several Jenkins from one job tree (see :mod:`dindjobs.targets` for what a target is).

The YAML is rendered once per distinct set of target ``vars`` (once when no target sets any);
each target is then planned and applied by :func:`run_sync` in a process of its own, forked
after the render (:mod:`dindjobs.jobs.target_procs`; a thread where there is no fork), with its
own ledger, sync lock, credentials and bounded pool of workers. A target that fails (down,
credentials refused) is reported and does not stop the others.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from dindjobs.errors import DindjobsError, ExitCode
from dindjobs.jobs.apply import ItemResult
from dindjobs.jobs.plan import WRITES, Action, Plan
from dindjobs.jobs.render import Rendered, render
from dindjobs.jobs.render_cache import cached_render
from dindjobs.jobs.sync import SyncOutcome, run_sync
from dindjobs.jobs.target_procs import Relay, fork_available, run_each_forked
from dindjobs.targets import Target, combined_exit, run_each


@dataclass
class TargetOutcome:
    """What one target's sync did, or the error that stopped it."""

    target: Target
    outcome: SyncOutcome | None = None
    error: DindjobsError | None = None

    @property
    def exit_code(self) -> int:
        if self.error is not None or self.outcome is None:
            return int(ExitCode.ERROR)
        return int(self.outcome.exit_code)

    @property
    def error_line(self) -> str:
        return self.error.one_line() if self.error is not None else ""

    def to_json(self) -> dict:
        data: dict = {"url": self.target.settings.url, "exit_code": self.exit_code}
        if self.target.variables:
            data["vars"] = dict(self.target.variables)
        if self.outcome is not None:
            data.update(self.outcome.to_json())
        else:
            data["error"] = self.error_line
        return data


@dataclass
class MultiOutcome:
    """Every target's outcome, in the order the targets were given."""

    targets: list[TargetOutcome] = field(default_factory=list)
    #: where the time went before the targets started, for --timings: ``render`` (seconds) and
    #: ``targets_started`` (seconds since this process started, where /proc tells)
    timings: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when no target could run, 3 when one failed or has failed items, 2 when one has
        changes pending (--plan), else 0."""
        return combined_exit([None if t.error is not None else t.exit_code for t in self.targets])

    @property
    def interrupted(self) -> bool:
        return any(t.outcome is not None and t.outcome.result is not None and t.outcome.result.interrupted
                   for t in self.targets)

    def to_json(self) -> dict:
        return {"targets": {t.target.name: t.to_json() for t in self.targets}, "exit_code": self.exit_code}


def render_for_targets(targets: Sequence[Target], paths: Sequence[str | os.PathLike[str]], *,
                       recursive: bool = True, excludes: Sequence[str] = (),
                       conf_path: str | os.PathLike[str] | None = None,
                       use_cache: bool = True) -> dict[tuple, Rendered]:
    """The YAML rendered once per distinct set of target variables (raises RenderError), from
    the render cache unless ``use_cache`` is False (the variables are part of its key)."""
    renders: dict[tuple, Rendered] = {}
    render_one = cached_render if use_cache else render
    for target in targets:
        if target.variables not in renders:
            renders[target.variables] = render_one(paths, recursive=recursive, excludes=excludes,
                                                   conf_path=conf_path, variables=dict(target.variables))
    return renders


def sync_targets(
    targets: Sequence[Target],
    paths: Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    excludes: Sequence[str] = (),
    confirm: Callable[[Target, Plan], bool] | None = None,
    on_plan: Callable[[Target, Plan], None] | None = None,
    on_result: Callable[[Target, ItemResult, int, int], None] | None = None,
    on_progress: Callable[[Target, str], None] | None = None,
    stop: threading.Event | None = None,
    use_cache: bool = True,
    diffs: bool = True,
    **options: object,
) -> MultiOutcome:
    """Render once, then sync every target at the same time; ``options`` go to :func:`run_sync`
    (``plan_only``, ``prune``, ``force``, ``adopt``, ``lock_timeout``, ``ready_timeout``,
    ``read_workers``). ``use_cache`` as for :func:`render_for_targets`.

    A YAML error raises before any target is contacted; any other error of a target is kept in
    its :class:`TargetOutcome` and the others go on. The callbacks get the target first and are
    called in this process. With more than one target (where fork exists) each target runs in a
    child process; the plans handed back then keep their diffs only when ``diffs`` is true, and
    hold no rendered item (the outcomes no rendering).
    """
    stop = stop or threading.Event()
    rendering = time.monotonic()
    renders = render_for_targets(targets, paths, recursive=recursive, excludes=excludes,
                                 conf_path=targets[0].settings.conf_path if targets else None,
                                 use_cache=use_cache)
    timings = {"render": time.monotonic() - rendering, "targets_started": _seconds_since_start()}

    def sync_one(target: Target, stop: threading.Event, **callbacks) -> SyncOutcome:
        try:
            return run_sync(target.settings, paths, recursive=recursive, excludes=excludes,
                            rendered=renders[target.variables], stop=stop, **callbacks,
                            **options)  # type: ignore[arg-type]
        except InterruptedError:
            raise DindjobsError("stopped while waiting for the sync lock; nothing applied") from None

    if len(targets) > 1 and fork_available():
        callbacks = {"plan": on_plan, "result": on_result, "progress": on_progress, "confirm": confirm}

        def in_child(target: Target, relay: Relay) -> SyncOutcome:
            slim = _Slimmer(diffs)

            def relayed(name: str, ask: bool = False):
                if callbacks[name] is None:
                    return None
                if ask:
                    return lambda plan: relay.ask(name, slim.plan(plan))
                if name == "plan":
                    return lambda plan: relay.send(name, slim.plan(plan))
                return lambda *args: relay.send(name, *args)
            outcome = sync_one(target, relay.stop, confirm=relayed("confirm", ask=True), on_plan=relayed("plan"),
                               on_result=relayed("result"), on_progress=relayed("progress"))
            return slim.outcome(outcome)

        def on_event(target: Target, event: tuple):
            name, *args = event
            return callbacks[name](target, *args)  # type: ignore[misc]

        each = run_each_forked(targets, in_child, on_event, stop)
    else:
        def in_thread(target: Target) -> SyncOutcome:
            def bind(callback):
                return None if callback is None else (lambda *args: callback(target, *args))
            return sync_one(target, stop, confirm=bind(confirm), on_plan=bind(on_plan), on_result=bind(on_result),
                            on_progress=bind(on_progress))

        each = run_each(targets, in_thread)
    return MultiOutcome([TargetOutcome(e.target, e.value, e.error) for e in each], timings)


def _seconds_since_start() -> float | None:
    """How long this process has run, from Linux's /proc (None elsewhere): the part of a
    multi-target sync that no target's process shares, for benchmarks."""
    try:
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class _Slimmer:
    """A child's plan and outcome as the parent needs them: no rendered items nor XML to push.

    The outcome's plan keeps its diffs when ``diffs`` (they are made here, in the child, for
    the creates); the plans of ``on_plan`` and ``confirm`` never need them. Each is made once."""

    def __init__(self, diffs: bool) -> None:
        self.diffs = diffs
        self._made: dict[bool, tuple[Plan, Plan]] = {}

    def plan(self, plan: Plan, diffs: bool = False) -> Plan:
        made = self._made.get(diffs)
        if made is None or made[0] is not plan:
            def shown(action: Action) -> bool:
                return diffs and action in (*WRITES, Action.DELETE)
            changes = [replace(c, push_xml=None, record=None, rendered_signature=None, item=None,
                               before=c.before if shown(c.action) else "",
                               after=c.after_text() if shown(c.action) else "")
                       for c in plan.changes]
            made = self._made[diffs] = (plan, replace(plan, changes=changes))
        return made[1]

    def outcome(self, outcome: SyncOutcome) -> SyncOutcome:
        return replace(outcome, plan=self.plan(outcome.plan, self.diffs), rendered=None)
