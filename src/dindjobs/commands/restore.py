"""`dindjobs restore FILE`: bring a wrapper back from a backup archive."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from dindjobs import output
from dindjobs.backup.operations import restore
from dindjobs.cli_support import json_option, name_option, pass_app
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.engine import connect


@click.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@name_option
@click.option("--force", is_flag=True, help="Replace an existing wrapper of that name and its volumes.")
@click.option("--image", help="Wrapper image to use instead of the one recorded in the archive.")
@click.option("--port", type=int, help="Jenkins HTTP port instead of the recorded one.")
@click.option("--ready-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for Jenkins and the nested daemon after the start.")
@json_option
@pass_app
def command(app, archive, name, force, image, port, ready_timeout, as_json) -> None:
    """Restore a wrapper from ARCHIVE (written by `dindjobs backup`).

    Every checksum is verified before anything is touched: a corrupt or truncated archive
    changes nothing. Existing volumes are only replaced with --force. The wrapper starts with
    the settings recorded in the archive; the jobs and builds Jenkins then sees are reported.
    """
    app.override(name=name)
    settings = app.settings
    result = restore(Wrapper(connect(), settings.name), settings, archive, force=force, image=image, port=port,
                     ready_timeout=ready_timeout, progress=output.progress)
    for note in result.notes:
        output.progress(f"note: {note}")
    if as_json:
        output.print_json(dataclasses.asdict(result))
        return
    rows = [
        ("wrapper", f"{result.name} ({result.security})"),
        ("url", result.url),
        ("restored", f"{result.data_bytes / 2**20:.1f} MiB, {result.entries} entries, "
                     f"{result.mb_per_s} MB/s (verified in {result.verify_seconds:.1f} s first)"),
        ("jobs", result.jobs),
        ("builds", result.builds),
        ("nested images", "?" if result.nested_images is None else result.nested_images),
        ("admin password file", f"{result.password_file} ({result.password_source})"),
    ]
    output.print_table(None, ["item", "value"], rows)
