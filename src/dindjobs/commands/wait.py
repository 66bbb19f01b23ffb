"""`dindjobs wait [--timeout S]`: block until Jenkins (and the wrapper's nested daemon) is usable."""

from __future__ import annotations

import click

from dindjobs import output
from dindjobs.cli_support import exits_with, json_option, name_option, pass_app, targets_option
from dindjobs.config import Settings
from dindjobs.jenkins.readiness import wait
from dindjobs.targets import combined_exit, run_each
from dindjobs.wrapper.container import find_running


@click.command("wait")
@click.option("--timeout", "wait_timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait before giving up (the error says the last state seen).")
@name_option
@click.option("--no-wrapper", is_flag=True, help="Wait for Jenkins only, even if a wrapper of that name runs.")
@targets_option
@json_option
@pass_app
@exits_with
def command(app, wait_timeout, name, no_wrapper, target_names, all_targets, as_json) -> int:
    """Wait until Jenkins answers, is past its 503 "getting ready" phase and accepts our
    credentials as a user that is not anonymous; when a wrapper of that name is running, also
    until its nested Docker daemon answers. A boot failure (persistent 500) or a missing
    permission fails at once. With several targets, all are waited for at the same time: exit
    0 when all are ready, 3 when some are, 1 when none is."""
    explicit = name is not None or app.flags.get("name") is not None
    app.override(name=name)
    targets = app.targets(target_names, all_targets)
    if targets is None or len(targets) == 1:
        settings = app.settings if targets is None else targets[0].settings
        info = _wait_one(settings, wait_timeout, no_wrapper, explicit, output.progress)
        if as_json:
            output.print_json(info)
        else:
            click.echo(_ready_line(info))
        return 0
    results = run_each(targets, lambda t: _wait_one(t.settings, wait_timeout, no_wrapper, explicit,
                                                    lambda text, n=t.name: output.progress(f"[{n}] {text}")))
    code = combined_exit([None if each.error else 0 for each in results])
    if as_json:
        output.print_json({"targets": {each.target.name: each.value or {"url": each.target.settings.url,
                                                                         "error": each.error.one_line()}
                                       for each in results}, "exit_code": code})
    else:
        for each in results:
            click.echo(f"{each.target.name}: " + (_ready_line(each.value) if each.value else
                                                  f"FAILED: {each.error.one_line()}"))
    return code


def _wait_one(settings: Settings, timeout: float, no_wrapper: bool, explicit: bool, on_progress) -> dict:
    daemon_check = None
    if not no_wrapper:
        wrapper, why = find_running(settings.name, timeout=30)
        if wrapper is not None:
            daemon_check = wrapper.nested_daemon_state
        elif explicit:
            on_progress(f"not waiting for a nested Docker daemon: {why}")
    return wait(settings, timeout, on_progress=on_progress, daemon_check=daemon_check)


def _ready_line(info: dict) -> str:
    return (f"ready: {info['url']} ({info['server']}, "
            f"user {info['user']}, nested daemon {info['nested_daemon']}) after {info['seconds']:.2f} s")
