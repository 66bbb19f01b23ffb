"""`dindjobs wait [--timeout S]`: block until Jenkins (and the wrapper's nested daemon) is usable."""

from __future__ import annotations

import click

from dindjobs import output
from dindjobs.cli_support import json_option, name_option, pass_app
from dindjobs.jenkins.readiness import wait
from dindjobs.wrapper.container import find_running


@click.command("wait")
@click.option("--timeout", "wait_timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait before giving up (the error says the last state seen).")
@name_option
@click.option("--no-wrapper", is_flag=True, help="Wait for Jenkins only, even if a wrapper of that name runs.")
@json_option
@pass_app
def command(app, wait_timeout, name, no_wrapper, as_json) -> None:
    """Wait until Jenkins answers, is past its 503 "getting ready" phase and accepts our
    credentials as a user that is not anonymous; when a wrapper of that name is running, also
    until its nested Docker daemon answers. A boot failure (persistent 500) or a missing
    permission fails at once."""
    explicit = name is not None or app.flags.get("name") is not None
    app.override(name=name)
    daemon_check = None
    if not no_wrapper:
        wrapper, why = find_running(app.settings.name, timeout=30)
        if wrapper is not None:
            daemon_check = wrapper.nested_daemon_state
        elif explicit:
            output.progress(f"not waiting for a nested Docker daemon: {why}")
    info = wait(app.settings, wait_timeout, on_progress=output.progress, daemon_check=daemon_check)
    if as_json:
        output.print_json(info)
    else:
        click.echo(f"ready: {info['url']} ({info['server']}, "
                   f"user {info['user']}, nested daemon {info['nested_daemon']}) after {info['seconds']:.2f} s")
