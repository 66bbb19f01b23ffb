"""`sync` end to end: render, plan from the server, guard, apply, remember what Jenkins stored.

Order of failure: YAML problems are found before any connection; missing folders, prune
limits and the delete confirmation before the first write; per-item failures during apply do
not stop the others.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dindjobs.config import Settings
from dindjobs.errors import DindjobsError, ExitCode
from dindjobs.jenkins.client import Jenkins
from dindjobs.jobs.apply import ApplyResult, ItemResult, apply_plan
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.plan import Plan, Snapshot, make_plan
from dindjobs.jobs.plugins import check_plugins
from dindjobs.jobs.render import Rendered, render

log = logging.getLogger(__name__)

FETCH_WORKERS = 16  # parallel config reads while planning: reads are cheap for Jenkins, and latency adds up


@dataclass
class SyncOutcome:
    """What a sync did: the plan, and the apply result unless it was a plan-only run."""

    plan: Plan
    result: ApplyResult | None = None
    rendered: Rendered | None = None

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
    client: Jenkins | None = None,
    on_warning: Callable[[str], None] = log.warning,
) -> SyncOutcome:
    """Render ``paths``, plan against Jenkins and (unless ``plan_only``) apply.

    ``confirm(plan)`` is asked before removals (return False to stop with nothing applied).
    ``on_plan`` sees the plan before anything is written; ``on_result`` each finished item.
    ``on_warning`` gets each component whose plugin the server lacks.
    Pass ``client`` to reuse a connection (its crumb and session survive between calls).
    """
    workers = workers or settings.workers
    own_client = client is None
    if client is None:
        client = Jenkins(settings, pool_size=max(workers, FETCH_WORKERS))
    # Reading the server (GETs only) overlaps with rendering; nothing is written before both are
    # done and valid. A YAML error still wins over a server error.
    snapshot = Snapshot(client, lambda url, identity: Ledger.open(settings.state_dir, url, identity),
                        FETCH_WORKERS)
    try:
        try:
            rendered = render(paths, recursive=recursive, excludes=excludes, conf_path=settings.conf_path)
            plan, ledger = make_plan(rendered, client, prune=prune, adopt=adopt, snapshot=snapshot,
                                     ledger_for=snapshot.ledger_for)
        finally:
            snapshot.close()
        check_plugins(rendered, client, on_warning)  # an item type the server cannot create stops us here
        if on_plan is not None:
            on_plan(plan)
        refusal = prune_guard(plan, force)
        if plan_only:
            return SyncOutcome(plan, None, rendered)
        if refusal:
            raise DindjobsError(refusal, hint="check the plan with --plan, then pass --force")
        if plan.removals and confirm is not None and not confirm(plan):
            raise DindjobsError("nothing applied: the removals were not confirmed")
        result = apply_plan(plan, client, ledger, workers=workers, on_result=on_result)
        ledger.save()
        return SyncOutcome(plan, result, rendered)
    finally:
        if own_client:
            client.close()
