"""`dindjobs image`: build the wrapper image through the Docker SDK (what `make image` does)."""

from __future__ import annotations

import dataclasses

import click

from dindjobs import output
from dindjobs.cli_support import json_option
from dindjobs.wrapper.engine import connect
from dindjobs.wrapper.image import build_image, image_dir
from dindjobs.wrapper.spec import DEFAULT_IMAGE


@click.command("image")
@click.option("--offline", is_flag=True,
              help="Build the base from Debian packages first (dind-image/offline/build-base.sh), no registry needed.")
@click.option("--base", help="Base image (the Dockerfile's BASE_IMAGE). Default: the pinned Jenkins LTS, or with "
              "--offline dindjobs-offline-base:trixie (env DINDJOBS_OFFLINE_BASE).")
@click.option("--tag", envvar="DINDJOBS_IMAGE", default=DEFAULT_IMAGE, show_default=True,
              help="Tag of the built image. Env: DINDJOBS_IMAGE.")
@click.option("--context", "context_dir", type=click.Path(file_okay=False, exists=True),
              help="The image directory (default: dind-image/ of this checkout; env DINDJOBS_IMAGE_DIR).")
@json_option
def command(offline, base, tag, context_dir, as_json) -> None:
    """Build the wrapper image; build output is streamed on stderr, the result goes to stdout."""
    result = build_image(connect(), image_dir(context_dir), tag=tag, base=base, offline=offline,
                         progress=output.progress)
    if as_json:
        output.print_json(dataclasses.asdict(result))
    else:
        click.echo(f"{result.tag} {result.id}")
