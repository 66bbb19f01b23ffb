"""`dindjobs logs`: the wrapper's output, Jenkins and the nested daemon alike."""

from __future__ import annotations

import sys

import click

from dindjobs.cli_support import name_option, pass_app
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.engine import connect


@click.command("logs")
@name_option
@click.option("-f", "--follow", is_flag=True, help="Keep streaming new output.")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@pass_app
def command(app, name, follow, tail) -> None:
    """Print the wrapper container's logs (Jenkins and the nested dockerd, stdout and stderr)."""
    app.override(name=name)
    out = sys.stdout.buffer
    for chunk in Wrapper(connect(), app.settings.name).logs(follow=follow, tail=tail):
        out.write(chunk)
        out.flush()
