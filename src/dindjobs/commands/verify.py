"""`dindjobs verify [PATH...] [--jobs GLOB]`: run the build jobs and prove they ran nested."""

from __future__ import annotations

import threading

import click

from dindjobs import output
from dindjobs.cli_support import exits_with, json_option, name_option, pass_app, targets_option
from dindjobs.config import Settings, redact
from dindjobs.jenkins.client import Jenkins
from dindjobs.targets import combined_exit, run_each
from dindjobs.verify.nesting import open_nesting
from dindjobs.verify.report import FAIL, SKIP, VerifyReport
from dindjobs.verify.run import Timeouts, select_jobs, verify


class _Console:
    """Console lines and states on stderr, prefixed with the job name when several jobs run."""

    def __init__(self, jobs: list[str], quiet: bool, secrets: list[str], target: str | None = None) -> None:
        self.prefix = len(jobs) > 1
        self.target = f"{target}: " if target else ""
        self.quiet = quiet
        self.secrets = secrets  # a job could echo our credential: it is never shown
        self.lock = threading.Lock()
        self.console = output.stderr_console()

    def line(self, job: str, text: str) -> None:
        if not self.quiet:
            with self.lock:
                text = redact(text, self.secrets)
                self.console.print(f"[{self.target}{job}] {text}" if self.prefix or self.target else text,
                                   markup=False)

    def state(self, job: str, text: str) -> None:
        with self.lock:
            self.console.print(f"verify: {self.target}{job}: {text}", markup=False)


@click.command("verify")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--jobs", "pattern", metavar="GLOB",
              help="Only jobs whose full name matches GLOB (e.g. 'images/*'). Without PATH: jobs on the server.")
@name_option
@click.option("--no-trigger", is_flag=True, help="Check each job's last build instead of starting a new one.")
@click.option("--timeout", "phase_timeout", type=click.FloatRange(min=0.1), default=600.0, show_default=True,
              help="Seconds allowed for each phase of each job: in the queue, building, finishing the log.")
@click.option("--delay", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help="Quiet period of the triggered builds (Jenkins' 'delay'); instead of each job's own.")
@click.option("--quiet", is_flag=True, help="Do not stream the consoles (states and the report still show).")
@targets_option
@json_option
@pass_app
@exits_with
def command(app, paths, pattern, name, no_trigger, phase_timeout, delay, quiet, target_names, all_targets,
            as_json) -> int:
    """Trigger each build job (parameterized ones with their default values), follow it through
    the queue to its build, stream its console on stderr and wait for its result. Then prove
    nesting: the daemon ID the job printed is the wrapper's nested daemon and not the host's,
    and the image ID it printed exists in the nested daemon and not on the host. Checks that
    cannot be made are reported as skipped, never as passed. Exit 0 only when every job
    succeeded and every proof held, else 1. With several targets (--target, --all-targets)
    each is verified at the same time against its own wrapper: exit 3 when some failed."""
    app.override(name=name)
    targets = app.targets(target_names, all_targets)
    options = dict(paths=paths, pattern=pattern, no_trigger=no_trigger, phase_timeout=phase_timeout, delay=delay,
                   quiet=quiet)
    if targets is not None and len(targets) > 1:
        results = run_each(targets, lambda t: _verify_one(t.settings, target=t.name, **options))
        code = combined_exit([None if each.error else int(each.value.exit_code) for each in results])
        if as_json:
            output.print_json({"targets": {each.target.name: each.value.to_json() if each.value else
                                           {"url": each.target.settings.url, "error": each.error.one_line()}
                                           for each in results}, "exit_code": code})
            return code
        output.print_table(None, ["target", "job", "build", "result", "seconds", "nested proof"], [
            (each.target.name, *row) for each in results if each.value for row in _rows(each.value)])
        for each in results:
            if each.value:
                _print_failures(each.value, f"{each.target.name}: ")
        for each in results:
            click.echo(f"{each.target.name}: " + (each.value.summary_line() if each.value else
                                                  f"FAILED: {each.error.one_line()}"))
        return code
    settings = app.settings if targets is None else targets[0].settings
    report = _verify_one(settings, **options)
    if as_json:
        output.print_json(report.to_json())
        return int(report.exit_code)
    output.print_table(None, ["job", "build", "result", "seconds", "nested proof"], _rows(report))
    _print_failures(report)
    click.echo(report.summary_line())
    return int(report.exit_code)


def _verify_one(settings: Settings, *, paths, pattern, no_trigger, phase_timeout, delay, quiet,
                target: str | None = None) -> VerifyReport:
    """Verify the jobs of one Jenkins (and its wrapper, named by ``settings.name``)."""
    where = f"verify: {target}: " if target else "verify: "
    client = Jenkins(settings)
    try:
        jobs = select_jobs(client, paths, pattern, conf_path=settings.conf_path)
        nesting = open_nesting(settings.name)
        if nesting.wrapper is None:
            output.progress(f"{where}nesting checks will be skipped: {nesting.unreachable}")
        console = _Console(jobs, quiet, settings.secrets(), target)
        server = client.server_info()["server"]
        output.progress(f"{where}{'checking the last build of' if no_trigger else 'building'} "
                        f"{len(jobs)} job(s) on {settings.url} ({server}): {', '.join(jobs)}")
        timeouts = Timeouts(queue=phase_timeout, build=phase_timeout, log=min(phase_timeout, 60.0))
        report = verify(client, jobs, nesting, trigger=not no_trigger, timeouts=timeouts, delay=delay,
                        on_line=console.line, on_state=console.state)
    finally:
        client.close()
    for job in report.jobs:  # the console tails are printed below and in --json
        job.log = redact(job.log, settings.secrets())
    return report


def _rows(report: VerifyReport) -> list[tuple]:
    return [(j.job, f"#{j.build}" if j.build is not None else "-", "skipped" if j.skipped else j.result or "-",
             f"{j.seconds:.1f}" if j.seconds is not None else "-", j.proof_text()) for j in report.jobs]


def _print_failures(report: VerifyReport, prefix: str = "") -> None:
    for job in report.jobs:
        if job.ok:
            continue
        if job.skipped:
            click.echo(f"\n{prefix}{job.job}: skipped: {job.skipped}")
            continue
        click.echo(f"\n{prefix}{job.job}: {job.reason or 'proof did not hold'}")
        for check in job.checks:
            if check.status in (FAIL, SKIP):
                click.echo(f"  {check.status} {check.name}: {check.detail}")
        for note in job.notes:
            click.echo(f"  note: {note}")
        if job.result not in (None, "SUCCESS") and job.console_tail:
            click.echo(f"  last lines of the console of #{job.build}:")
            for line in job.console_tail:
                click.echo(f"  | {line}")
