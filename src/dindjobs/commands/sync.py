"""`dindjobs sync PATH...`: push JJB YAML to Jenkins, planned against the live server every run."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading

import click

from dindjobs import output
from dindjobs.cli_support import exits_with, json_option, name_option, pass_app, targets_option
from dindjobs.errors import DindjobsError, Interrupted
from dindjobs.jobs.apply import DEFAULT_READY_TIMEOUT, ItemResult
from dindjobs.jobs.lock import DEFAULT_LOCK_TIMEOUT
from dindjobs.jobs.plan import Action, Plan
from dindjobs.jobs.sync import prune_guard, run_sync
from dindjobs.jobs.sync_many import MultiOutcome, render_for_targets, sync_targets
from dindjobs.targets import Target

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


def _confirm_removals(yes: bool, signals: _Signals, interruptible: bool = True):
    """``interruptible=False`` when asked from a target's thread: Ctrl-C then stops the run
    (nothing is sent after the answer) instead of raising in the main thread."""
    def confirm(plan: Plan) -> bool:
        if yes:
            return True
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise DindjobsError(f"{len(plan.removals)} item(s) would be removed (--prune)",
                                hint="review with --plan, then confirm with --yes")
        names = ", ".join(c.name for c in plan.removals[:5]) + (" ..." if len(plan.removals) > 5 else "")
        question = f"{plan.prune or 'delete'} {len(plan.removals)} item(s) ({names})?"
        if not interruptible:
            return click.confirm(question, err=True)
        with signals.prompting():  # Ctrl-C at the prompt aborts it: nothing is in flight yet
            return click.confirm(question, err=True)
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
@click.option("--read-workers", type=click.IntRange(min=1, max=64),
              help="Parallel config reads while planning (sized for the server, apart from --workers). Default 32.")
@click.option("--no-cache", is_flag=True,
              help="Render with JJB even when the render cache holds this YAML's rendering (Jenkins is read either way).")
@click.option("--timings", is_flag=True, hidden=True, help="Say on stderr where the time went (for benchmarks).")
@click.option("--yes", is_flag=True, help="Apply removals without asking.")
@click.option("--force", is_flag=True, help="Allow more removals than the guard (10 items or 25 % of owned items).")
@click.option("--adopt", is_flag=True, help="Take over existing items of the same name that dindjobs did not create.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Look for YAML in subdirectories.")
@click.option("-x", "--exclude", "excludes", multiple=True, help="Directory pattern to skip (repeatable).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=DEFAULT_LOCK_TIMEOUT, show_default=True,
              help="Seconds to wait for another sync of the same Jenkins to finish.")
@click.option("--timeout", "ready_timeout", type=click.FloatRange(min=0), default=DEFAULT_READY_TIMEOUT,
              show_default=True, help="Seconds to wait for a restarting Jenkins to be ready again.")
@name_option
@targets_option
@json_option
@pass_app
@exits_with
def command(app, paths, plan_only, prune, workers, read_workers, no_cache, timings, yes, force, adopt, recursive,
            excludes, lock_timeout, ready_timeout, name, target_names, all_targets, as_json) -> int:
    """Render the YAML, compare it with what Jenkins has now, and create, update or restore
    what differs (folders before their contents). Unchanged items get no request; items
    changed in Jenkins since the last sync show as drifted and are restored; items that exist
    but are not ours are left alone. Exit 0 in sync or all applied, 2 changes pending (--plan),
    3 some items failed (see the table). One sync per Jenkins at a time: a second one waits
    (--lock-timeout). A Jenkins restart is waited out (--timeout). Ctrl-C or SIGTERM lets the
    requests in flight finish, saves what was done and exits 130 or 143.

    With --target (repeatable) or --all-targets the YAML is rendered once and every target is
    planned and applied at the same time; a target that is down is reported and the others go
    on. Exit 2 if any target has changes pending (--plan), 3 if a target or an item failed, 1
    only when no target could run."""
    app.override(workers=workers, name=name)
    targets = app.targets(target_names, all_targets)
    signals = _Signals()
    options = dict(plan_only=plan_only, prune=prune, force=force, adopt=adopt, recursive=recursive,
                   excludes=excludes, lock_timeout=lock_timeout, ready_timeout=ready_timeout,
                   read_workers=read_workers, use_cache=not no_cache)
    if targets is not None and len(targets) > 1:
        return _sync_many(targets, paths, options, yes=yes, signals=signals, as_json=as_json, timings=timings)
    settings = app.settings if targets is None else targets[0].settings
    rendered = None
    progress = _Progress(quiet=as_json or plan_only)
    try:
        if targets is not None and targets[0].variables:
            rendered = render_for_targets(targets, paths, recursive=recursive, excludes=excludes,
                                          conf_path=settings.conf_path, use_cache=not no_cache)[targets[0].variables]
        with signals.installed():
            outcome = run_sync(settings, paths, rendered=rendered, plan_only=plan_only, prune=prune, force=force,
                               adopt=adopt, recursive=recursive, excludes=excludes, confirm=_confirm_removals(yes, signals),
                               on_plan=progress.plan, on_result=progress.result, on_progress=output.progress,
                               on_warning=output.progress,
                               lock_timeout=lock_timeout, ready_timeout=ready_timeout, stop=signals.stop,
                               read_workers=read_workers, use_cache=not no_cache)
    except InterruptedError:
        raise Interrupted(f"{signals.name}: stopped while waiting for the sync lock; nothing applied",
                          signals.number) from None
    finally:
        progress.close()
    if timings:
        _print_timings(outcome.timings)
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
    if outcome.result is not None and outcome.result.interrupted:
        output.progress(f"dindjobs: {signals.name}: stopped; the ledger is saved. {outcome.result.summary_line()}")
        return 128 + signals.number
    return int(outcome.exit_code)


def _print_timings(timings: dict, target: str | None = None) -> None:
    where = f"[{target}] " if target else ""
    output.progress(f"{where}dindjobs timings: " + json.dumps({k: round(v, 4) if isinstance(v, float) else v
                                                              for k, v in timings.items()}))


def _sync_many(targets: list[Target], paths, options: dict, *, yes: bool, signals: _Signals, as_json: bool,
               timings: bool = False) -> int:
    """Sync several targets at once and print one report with a target column."""
    quiet = as_json or options["plan_only"]
    printing = threading.Lock()
    confirm_one = _confirm_removals(yes, signals, interruptible=False)

    def on_plan(target: Target, plan: Plan) -> None:
        if not quiet:
            with printing:
                for change in plan.changes:
                    if change.action is not Action.UNCHANGED:
                        output.progress(f"[{target.name}] {_change_line(change)}")
                output.progress(f"[{target.name}] {plan.summary_line()}")

    def on_result(target: Target, item: ItemResult, done: int, total: int) -> None:
        if not quiet:
            line = f"[{target.name}] [{done}/{total}] {item.action} {item.kind} {item.name}: {item.result}"
            output.progress(line + (f" ({item.reason})" if item.result != "ok" else f" ({item.seconds:.2f} s)"))

    def on_progress(target: Target, text: str) -> None:
        output.progress(f"[{target.name}] {text}")

    def confirm(target: Target, plan: Plan) -> bool:
        with printing:  # one question at a time, naming the target it is about
            if not yes:
                output.progress(f"target {target.name} ({target.settings.url}):")
            return confirm_one(plan)

    with signals.installed():
        multi = sync_targets(targets, paths, confirm=confirm, on_plan=on_plan, on_result=on_result,
                             on_progress=on_progress, stop=signals.stop, diffs=quiet, **options)
    _report_many(multi, options["plan_only"], options["force"], as_json)
    if timings:
        _print_timings(multi.timings)
        for each in multi.targets:
            if each.outcome is not None:
                _print_timings(each.outcome.timings, each.target.name)
    if multi.interrupted:
        output.progress(f"dindjobs: {signals.name}: stopped; the ledgers are saved.")
        return 128 + signals.number
    return multi.exit_code


def _report_many(multi: MultiOutcome, plan_only: bool, force: bool, as_json: bool) -> None:
    if as_json:
        output.print_json(multi.to_json())
        return
    if plan_only:
        rows = [(t.target.name, c.label, c.action.value, c.reason) for t in multi.targets if t.outcome
                for c in t.outcome.plan.changes if c.action is not Action.UNCHANGED]
        if rows:
            output.print_table(None, ["target", "item", "action", "reason"], rows)
        for t in multi.targets:
            for change in t.outcome.plan.changes if t.outcome else ():
                diff = change.diff() if change.action is not Action.UNCHANGED else ""
                if diff:
                    click.echo(f"[{t.target.name}] {change.label}:")
                    click.echo(diff)
    else:
        rows = [(t.target.name, f"{r.kind} {r.name}", r.action, r.result, r.reason) for t in multi.targets
                if t.outcome and t.outcome.result for r in t.outcome.result.items]
        if rows:
            output.print_table(None, ["target", "item", "action", "result", "reason"], rows)
    for t in multi.targets:
        click.echo(f"{t.target.name}: {_target_summary(t, plan_only, force)}")


def _target_summary(t, plan_only: bool, force: bool) -> str:
    if t.outcome is None:
        return f"FAILED: {t.error_line}"
    if plan_only:
        refusal = prune_guard(t.outcome.plan, force)
        return t.outcome.plan.summary_line() + (f" Note: {refusal}; sync would stop unless --force." if refusal else "")
    result = t.outcome.result
    return result.summary_line() if result.items else f"In sync: {result.unchanged} items unchanged, nothing sent."


class _Signals:
    """SIGINT and SIGTERM set an event instead of killing the run (see jobs.sync.run_sync)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.number = signal.SIGINT
        self._prompting = False

    @property
    def name(self) -> str:
        return signal.Signals(self.number).name

    def _handle(self, number: int, _frame) -> None:
        if self._prompting:
            raise KeyboardInterrupt
        if not self.stop.is_set():
            self.number = number
            output.progress(f"dindjobs: {signal.Signals(number).name}: finishing the requests in flight, "
                            "sending no new one")
        self.stop.set()

    @contextlib.contextmanager
    def prompting(self):
        self._prompting = True
        try:
            yield
        finally:
            self._prompting = False

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
