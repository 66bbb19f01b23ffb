"""`dindjobs down`: stop the wrapper gracefully and remove it; volumes only on request."""

from __future__ import annotations

import dataclasses
import sys

import click

from dindjobs import output
from dindjobs.cli_support import json_option, pass_app
from dindjobs.errors import ConfigError
from dindjobs.wrapper.container import Wrapper, connect
from dindjobs.wrapper.lifecycle import down
from dindjobs.wrapper.secrets import admin_password_path


@click.command("down")
@click.option("--name", help="Wrapper name; overrides the global --name.")
@click.option("--volumes", "remove_volumes", is_flag=True,
              help="Also delete its volumes (Jenkins home and the nested images) and the generated password.")
@click.option("--yes", is_flag=True, help="Do not ask before deleting volumes.")
@json_option
@pass_app
def command(app, name, remove_volumes, yes, as_json) -> None:
    """Stop the wrapper (Jenkins first, then the nested daemon) and remove the container.

    The volumes are kept, so the next `dindjobs up` finds the same Jenkins home and images.
    `--volumes` deletes them too, after a confirmation (or `--yes`); volumes not created by
    dindjobs are never deleted.
    """
    app.override(name=name)
    settings = app.settings
    if remove_volumes and not yes:
        if not sys.stdin.isatty():
            raise ConfigError("--volumes deletes Jenkins home and the nested daemon's images", hint="confirm with --yes")
        click.confirm(f"Delete the volumes of wrapper {settings.name} (Jenkins home, nested images)?",
                      abort=True, err=True)
    forget = admin_password_path(settings.wrapper_state_dir) if remove_volumes else None
    client = connect()
    if remove_volumes:  # an interrupted restore's or backup's helper would hold the volumes
        for helper in Wrapper(client, settings.name).remove_helpers():
            output.progress(f"removed {helper}, left by an interrupted restore or backup")
    result = down(client, settings.name, remove_volumes=remove_volumes, progress=output.progress,
                  forget=forget)
    if as_json:
        output.print_json(dataclasses.asdict(result))
        return
    rows = [("container " + result.name, result.container),
            *((f"volume {v}", state) for v, state in result.volumes.items())]
    if result.password_file:
        rows.append(("admin password file", result.password_file))
    output.print_table(None, ["item", "value"], rows)
