"""`dindjobs test PATH... [-o DIR]`: render JJB YAML to Jenkins XML without a server."""

from __future__ import annotations

import os

import click

from dindjobs import output
from dindjobs.cli_support import pass_app
from dindjobs.config import ENV_CONFIG
from dindjobs.jobs.render import render, write_xml


@click.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False),
              help="Write DIR/jobs/<name>/config.xml and DIR/views/<name>/config.xml instead of printing.")
@click.option("--recursive/--no-recursive", default=True, show_default=True,
              help="Look for YAML in subdirectories.")
@click.option("-x", "--exclude", "excludes", multiple=True, help="Directory pattern to skip (repeatable).")
@pass_app
def command(app, paths, output_dir, recursive, excludes) -> None:
    """Render YAML files or directories to XML and validate them (names too); nothing is sent.

    Without -o the XML goes to stdout, each document after a `<!-- job NAME -->` or
    `<!-- view NAME -->` line. YAML errors are reported as file:line:col with the offending line.
    """
    # Only the ini's rendering options matter here: no settings resolution, so never a password prompt.
    conf = app.flags.get("conf") or os.environ.get(ENV_CONFIG) or None
    rendered = render(paths, recursive=recursive, excludes=excludes, conf_path=conf)
    if output_dir:
        written = write_xml(rendered, output_dir)
        output.progress(f"wrote {len(written)} files ({len(rendered.jobs)} jobs, {len(rendered.views)} views) "
                        f"under {output_dir}")
    else:
        click.echo(rendered.as_text(), nl=False)
        output.progress(f"rendered {len(rendered.jobs)} jobs and {len(rendered.views)} views")
