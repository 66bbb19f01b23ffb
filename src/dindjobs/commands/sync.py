"""`dindjobs sync PATH...`: push JJB YAML to Jenkins, planned against the live server every run."""

from __future__ import annotations

import sys

import click

from dindjobs import output
from dindjobs.cli_support import exits_with, json_option, pass_app
from dindjobs.errors import DindjobsError
from dindjobs.jobs.apply import ItemResult
from dindjobs.jobs.plan import Action, Plan
from dindjobs.jobs.sync import prune_guard, run_sync

SIGNS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DRIFTED: "!", Action.DELETE: "-",
         Action.DISABLE: "-", Action.CONFLICT: "x"}


def _change_line(change) -> str:
    return f"{SIGNS.get(change.action, ' ')} {change.action.value} {change.label}: {change.reason}"


def _print_plan(plan: Plan, force: bool) -> None:
    for change in plan.changes:
        if change.action is Action.UNCHANGED:
            continue
        click.echo(_change_line(change))
        diff = change.diff()
        if diff:
            click.echo(diff)
    refusal = prune_guard(plan, force)
    if refusal:
        click.echo(f"Note: {refusal}; sync would stop unless --force is given.")
    click.echo(plan.summary_line())


class _Progress:
    """A rich progress bar on a TTY, else one line per finished item, all on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.task = None

    def plan(self, plan: Plan) -> None:
        if self.quiet:
            return
        for change in plan.changes:
            if change.action is not Action.UNCHANGED:
                output.progress(_change_line(change))
        output.progress(plan.summary_line())

    def result(self, item: ItemResult, done: int, total: int) -> None:
        if self.quiet:
            return
        if sys.stderr.isatty():
            if self.bar is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

                self.bar = Progress(TextColumn("sync"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.description}"), console=output.stderr_console(),
                                    transient=True)
                self.bar.start()
                self.task = self.bar.add_task("", total=total)
            self.bar.update(self.task, completed=done, description=f"{item.action} {item.name}")
            if item.result != "ok":
                self.bar.console.print(f"{item.action} {item.kind} {item.name}: {item.result}: {item.reason}",
                                       markup=False)
        else:
            line = f"[{done}/{total}] {item.action} {item.kind} {item.name}: {item.result}"
            output.progress(line + (f" ({item.reason})" if item.result != "ok" else f" ({item.seconds:.2f} s)"))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _confirm_removals(yes: bool):
    def confirm(plan: Plan) -> bool:
        if yes:
            return True
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise DindjobsError(f"{len(plan.removals)} item(s) would be removed (--prune)",
                                hint="review with --plan, then confirm with --yes")
        names = ", ".join(c.name for c in plan.removals[:5]) + (" ..." if len(plan.removals) > 5 else "")
        return click.confirm(f"{plan.prune or 'delete'} {len(plan.removals)} item(s) ({names})?", err=True)
    return confirm


class _SyncCommand(click.Command):
    """Lets a bare ``--prune`` mean ``--prune=delete`` even when a path follows it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        args = ["--prune=delete" if arg == "--prune" else arg for arg in args[:end]] + args[end:]
        return super().parse_args(ctx, args)


@click.command("sync", cls=_SyncCommand)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--plan", "plan_only", is_flag=True,
              help="Only show what would change (a diff per item); exit 2 if anything would, 0 if in sync.")
@click.option("--prune", type=click.Choice(["delete", "disable"]), default=None, metavar="[=delete|disable]",
              help="Delete (or disable) items dindjobs created that are no longer in the YAML. A bare --prune deletes.")
@click.option("--workers", type=click.IntRange(min=1, max=64), help="Parallel requests while applying. Default 4.")
@click.option("--yes", is_flag=True, help="Apply removals without asking.")
@click.option("--force", is_flag=True, help="Allow more removals than the guard (10 items or 25 % of owned items).")
@click.option("--adopt", is_flag=True, help="Take over existing items of the same name that dindjobs did not create.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Look for YAML in subdirectories.")
@click.option("-x", "--exclude", "excludes", multiple=True, help="Directory pattern to skip (repeatable).")
@json_option
@pass_app
@exits_with
def command(app, paths, plan_only, prune, workers, yes, force, adopt, recursive, excludes, as_json) -> int:
    """Render the YAML, compare it with what Jenkins has now, and create, update or restore
    what differs (folders before their contents). Unchanged items get no request; items
    changed in Jenkins since the last sync show as drifted and are restored; items that exist
    but are not ours are left alone. Exit 0 in sync or all applied, 2 changes pending (--plan),
    3 some items failed (see the table)."""
    app.override(workers=workers)
    progress = _Progress(quiet=as_json or plan_only)
    try:
        outcome = run_sync(app.settings, paths, plan_only=plan_only, prune=prune, force=force, adopt=adopt,
                           recursive=recursive, excludes=excludes, confirm=_confirm_removals(yes),
                           on_plan=progress.plan, on_result=progress.result)
    finally:
        progress.close()
    if as_json:
        output.print_json(outcome.to_json())
    elif plan_only:
        _print_plan(outcome.plan, force)
    else:
        result = outcome.result
        if result.items:
            output.print_table(None, ["item", "action", "result", "reason"],
                               [(f"{r.kind} {r.name}", r.action, r.result, r.reason) for r in result.items])
        click.echo(result.summary_line() if result.items else
                   f"In sync: {result.unchanged} items unchanged, nothing sent.")
    return int(outcome.exit_code)
