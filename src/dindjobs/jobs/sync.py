"""`sync` end to end: render, plan from the server, guard, apply, remember what Jenkins stored.

Order of failure: YAML problems are found before any connection; missing folders, prune
limits and the delete confirmation before the first write; per-item failures during apply do
not stop the others.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dindjobs.config import Settings
from dindjobs.errors import DindjobsError, ExitCode, JenkinsError, JenkinsNotReadyError
from dindjobs.jenkins.client import Jenkins
from dindjobs.jobs.apply import (
    DEFAULT_READY_TIMEOUT,
    ApplyResult,
    ItemResult,
    Recovery,
    Stopped,
    apply_plan,
    restarting,
)
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.lock import DEFAULT_LOCK_TIMEOUT, SyncLock
from dindjobs.jobs.plan import Plan, Snapshot, make_plan
from dindjobs.jobs.plugins import check_plugins
from dindjobs.jobs.render import Rendered, render
from dindjobs.jobs.render_cache import cached_render

log = logging.getLogger(__name__)

#: Parallel config reads while planning (``read_workers``), apart from the writes' ``--workers``.
#: A config.xml GET costs Jenkins little CPU but a round trip and some milliseconds of its own
#: (XStream, disk), and Jetty serves many at once: the pool is sized for what the server answers
#: in parallel, not for what it can absorb of writes; one kept-alive connection per worker.
#: Measured on the slower double (+20 ms a request): 8 workers 3.1 s, 16 1.8 s, 32 1.4-1.7 s,
#: 64 1.2 s for 511 reads, on the stand-in alone 16 and 32 are alike.
FETCH_WORKERS = 32


@dataclass
class SyncOutcome:
    """What a sync did: the plan, and the apply result unless it was a plan-only run."""

    plan: Plan
    result: ApplyResult | None = None
    rendered: Rendered | None = None
    timings: dict = field(default_factory=dict)  # where the time went (seconds), for --timings

    @property
    def exit_code(self) -> ExitCode:
        if self.result is None:
            return ExitCode.CHANGES_PENDING if self.plan.pending else ExitCode.OK
        return ExitCode.PARTIAL_FAILURE if self.result.failed else ExitCode.OK

    def to_json(self) -> dict:
        data = {"plan": self.plan.to_json(with_diff=True)}
        if self.result is not None:
            data["result"] = self.result.to_json()
        return data


def prune_guard(plan: Plan, force: bool) -> str | None:
    """Why the removals of ``plan`` need ``--force``, or None when they are within the limits."""
    removals = len(plan.removals)
    limit = plan.prune_limit()
    if removals <= limit or force:
        return None
    return (f"refusing to {plan.prune or 'delete'} {removals} items: more than {limit} "
            f"(the limit is 10 items or 25 % of the {plan.owned} items dindjobs owns here)")


def run_sync(
    settings: Settings,
    paths: Sequence[str | os.PathLike[str]],
    *,
    plan_only: bool = False,
    prune: str | None = None,
    workers: int | None = None,
    force: bool = False,
    adopt: bool = False,
    recursive: bool = True,
    excludes: Sequence[str] = (),
    confirm: Callable[[Plan], bool] | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_result: Callable[[ItemResult, int, int], None] | None = None,
    on_progress: Callable[[str], None] | None = None,
    client: Jenkins | None = None,
    on_warning: Callable[[str], None] = log.warning,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
    stop: threading.Event | None = None,
    read_workers: int | None = None,
    use_cache: bool = True,
    rendered: Rendered | None = None,
) -> SyncOutcome:
    """Render ``paths``, plan against Jenkins and (unless ``plan_only``) apply.

    ``confirm(plan)`` is asked before removals (return False to stop with nothing applied).
    ``on_plan`` sees the plan before anything is written; ``on_result`` each finished item;
    ``on_progress`` the waits (for the lock, for a restarting Jenkins); ``on_warning`` each
    component whose plugin the server lacks.
    Pass ``client`` to reuse a connection (its crumb and session survive between calls).
    Unless ``plan_only``, the instance's sync lock is held from before the ledger is read until
    it is saved (waiting up to ``lock_timeout``). A restart of Jenkins is waited out (up to
    ``ready_timeout`` each time). Setting ``stop`` ends the run early: requests in flight
    finish, nothing new is sent, the ledger is saved. ``read_workers`` sizes the pool of
    parallel config reads (default :data:`FETCH_WORKERS`); ``use_cache=False`` renders without
    the render cache (:mod:`dindjobs.jobs.render_cache`). Pass ``rendered`` to skip rendering
    (several targets share one render).
    """
    started = time.monotonic()
    timings: dict = {}
    workers = workers or settings.workers
    read_workers = read_workers or FETCH_WORKERS
    stop = stop or threading.Event()
    own_client = client is None
    if client is None:
        # One quick retry of its own: longer outages are waited out by Recovery, which polls
        # readiness every 0.1 s instead of backing off for up to 2 s between attempts.
        client = Jenkins(settings, pool_size=max(workers, read_workers), retries=1)
    lock = None
    ledger: Ledger | None = None
    try:
        if not plan_only:
            lock = SyncLock(settings.state_dir, client.url).acquire(lock_timeout, on_wait=on_progress, stop=stop)
        rendered, plan, ledger = _render_and_plan(settings, paths, client, plan_only=plan_only, prune=prune,
                                                  adopt=adopt, recursive=recursive, excludes=excludes,
                                                  recovery=Recovery(client, ready_timeout, stop, on_progress),
                                                  read_workers=read_workers, use_cache=use_cache, timings=timings,
                                                  rendered=rendered)
        timings["plan"] = time.monotonic() - started
        check_plugins(rendered, client, on_warning)  # an item type the server cannot create stops us here
        if on_plan is not None:
            on_plan(plan)
        refusal = prune_guard(plan, force)
        if plan_only:
            return SyncOutcome(plan, None, rendered, _total(timings, started))
        if refusal:
            raise DindjobsError(refusal, hint="check the plan with --plan, then pass --force")
        if plan.removals and not stop.is_set() and confirm is not None and not confirm(plan):
            raise DindjobsError("nothing applied: the removals were not confirmed")
        applying = time.monotonic()
        result = apply_plan(plan, client, ledger, workers=workers, on_result=on_result, stop=stop,
                            ready_timeout=ready_timeout, on_progress=on_progress)
        ledger.save()
        timings["apply"] = time.monotonic() - applying
        return SyncOutcome(plan, result, rendered, _total(timings, started))
    finally:
        if ledger is not None:
            ledger.close()
        if lock is not None:
            lock.release()
        if own_client:
            client.close()


def _total(timings: dict, started: float) -> dict:
    timings["total"] = time.monotonic() - started
    return timings


def _render_and_plan(settings: Settings, paths, client: Jenkins, *, plan_only: bool, prune: str | None,
                     adopt: bool, recursive: bool, excludes: Sequence[str], recovery: Recovery,
                     read_workers: int = FETCH_WORKERS, use_cache: bool = True,
                     timings: dict | None = None, rendered: Rendered | None = None) -> tuple[Rendered, Plan, Ledger]:
    """Render (once) and plan; a plan that meets a restarting Jenkins is made again once it is ready."""
    def ledger_for(url: str, identity: str | None) -> Ledger:
        return Ledger.open(settings.state_dir, url, identity, writable=not plan_only)

    while True:
        # Reading the server (GETs only) overlaps with rendering; nothing is written before both
        # are done and valid. A YAML error still wins over a server error.
        snapshot = Snapshot(client, ledger_for, read_workers)
        failed_at = time.monotonic()
        try:
            if rendered is None:
                rendering = time.monotonic()
                render_with = cached_render if use_cache else render
                rendered = render_with(paths, recursive=recursive, excludes=excludes, conf_path=settings.conf_path)
                if timings is not None:
                    timings.update(render=time.monotonic() - rendering, render_cached=rendered.cached)
            plan, ledger = make_plan(rendered, client, prune=prune, adopt=adopt, snapshot=snapshot,
                                     ledger_for=ledger_for)
            if timings is not None:
                timings.update(snapshot.timings)
            return rendered, plan, ledger
        except JenkinsError as exc:
            # Wait for a Jenkins that is restarting or starting (503), not for a wrong URL:
            # refused or reset before anything answered in this run fails at once.
            answered = client.session_id is not None or client.version is not None
            if not restarting(exc) or not (answered or isinstance(exc, JenkinsNotReadyError)):
                raise
            try:
                recovery.wait(failed_at, exc)
            except Stopped:
                raise exc from None
        finally:
            snapshot.close()
