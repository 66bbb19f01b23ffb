"""`dindjobs backup`: a consistent archive of the wrapper's volumes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from dindjobs import output
from dindjobs.backup.operations import backup
from dindjobs.cli_support import json_option, name_option, pass_app
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.engine import connect


@click.command("backup")
@name_option
@click.option("-o", "--output", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="Archive to write (.tar.gz, or .tar.zst with the zstandard module). "
                   "Default: <name>-<UTC time>.tar.zst or .tar.gz in the current directory.")
@click.option("--with-images", is_flag=True, help="Also archive the nested daemon's data (/var/lib/docker): images, cache.")
@click.option("--live", is_flag=True, help="Do not stop the wrapper. Unsafe: files may change while they are "
              "copied (quiet-down only stops new builds); a warning says so.")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="Seconds to wait for running builds after the quiet-down.")
@click.option("--ready-timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for Jenkins and the nested daemon after the restart.")
@json_option
@pass_app
def command(app, name, path, with_images, live, drain_timeout, ready_timeout, as_json) -> None:
    """Archive the wrapper's Jenkins home (and with --with-images its nested images).

    Jenkins is put into quiet-down and running builds may finish (--drain-timeout), then the
    wrapper is stopped, its volumes are streamed out of the stopped container, and it is started
    again (a stopped wrapper stays stopped). The archive holds a manifest with every file's size
    and sha256, and appears under its name only once complete.
    """
    app.override(name=name)
    settings = app.settings
    result = backup(Wrapper(connect(), settings.name), settings, path, with_images=with_images, live=live,
                    drain_timeout=drain_timeout, ready_timeout=ready_timeout, progress=output.progress)
    if as_json:
        output.print_json(dataclasses.asdict(result))
        return
    rows = [
        ("archive", f"{result.path} (mode {result.archive_mode}: it holds Jenkins' secrets, keep it private)"),
        ("size", f"{result.archive_bytes / 2**20:.1f} MiB ({result.data_bytes / 2**20:.1f} MiB of data, "
                 f"{result.entries} entries)"),
        ("throughput", f"{result.mb_per_s} MB/s over {result.seconds:.1f} s"),
        ("downtime", "none (wrapper kept running)" if result.downtime_seconds is None
         else f"{result.downtime_seconds:.1f} s"),
        ("nested images", "included" if result.with_images else "not included (--with-images)"),
    ]
    output.print_table(None, ["item", "value"], rows)
