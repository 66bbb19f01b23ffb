"""`dindjobs config`: show the settings dindjobs resolved, with secrets reduced to their source."""

from __future__ import annotations

import click

from dindjobs import output
from dindjobs.cli_support import json_option, pass_app


@click.command("config")
@json_option
@pass_app
def command(app, as_json: bool) -> None:
    """Show the resolved settings (flags > environment > ini file).

    Secrets are never printed: only where each one came from.
    """
    described = app.settings.describe()
    if as_json:
        output.print_json(described)
    else:
        output.print_table(None, ["setting", "value"], sorted(described.items()))
