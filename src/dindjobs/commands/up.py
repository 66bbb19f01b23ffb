"""`dindjobs up`: start the wrapper (volumes, security mode, networking, admin password file)."""

from __future__ import annotations

import dataclasses

import click

from dindjobs import output
from dindjobs.backup import quietdown
from dindjobs.cli_support import json_option, name_option, pass_app
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.engine import connect
from dindjobs.wrapper.secrets import admin_password_path, discard_admin_password, ensure_admin_password
from dindjobs.wrapper.spec import DEFAULT_BIND, DEFAULT_IMAGE, DEFAULT_PORT, NETWORK_MODES, SECURITY_MODES, WrapperSpec


@click.command("up")
@name_option
@click.option("--image", envvar="DINDJOBS_IMAGE", default=DEFAULT_IMAGE, show_default=True,
              help="Wrapper image. Env: DINDJOBS_IMAGE.")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Jenkins HTTP port on this machine.")
@click.option("--bind", default=DEFAULT_BIND, show_default=True, help="Address Jenkins is reachable on: the published port (bridge) or its listen address (host networking).")
@click.option("--network", type=click.Choice(NETWORK_MODES), default="auto", show_default=True,
              help="auto: host networking when the engine has no bridge network.")
@click.option("--security", type=click.Choice(SECURITY_MODES), default="privileged", show_default=True,
              help="privileged (falls back to caps when the kernel cannot grant every capability), caps, or sysbox.")
@click.option("--dockerd-args", default="", help="Extra arguments for the nested dockerd (one string, split on whitespace).")
@click.option("--wait", "wait_seconds", type=float, default=0, metavar="SECONDS",
              help="Wait up to SECONDS for the wrapper to be healthy.")
@json_option
@pass_app
def command(app, name, image, port, bind, network, security, dockerd_args, wait_seconds, as_json) -> None:
    """Start the wrapper: Jenkins and its own Docker daemon, state in two named volumes.

    Idempotent: with the same settings a running wrapper is left alone; different settings are
    an error that names the difference. The admin password is a file (from
    DINDJOBS_PASSWORD_FILE or DINDJOBS_PASSWORD, else generated once in the state directory),
    mounted read-only into the container; its path is printed, never its value.
    """
    app.override(name=name)
    settings = app.settings
    had_password = admin_password_path(settings.wrapper_state_dir).exists()
    password = ensure_admin_password(settings.wrapper_state_dir)
    spec = WrapperSpec(
        name=settings.name, image=image, port=port, bind=bind, network=network, security=security,
        dockerd_args=tuple(dockerd_args.split()), password_file=password.path,
    )
    try:
        wrapper = Wrapper(connect(), spec.name)
        result = wrapper.up(spec, progress=output.progress)
    except BaseException:
        if not had_password:  # an `up` that failed leaves no password behind for a wrapper that never ran
            discard_admin_password(settings.wrapper_state_dir)
        raise
    for note in result.notes:
        output.progress(f"note: {note}")
    if result.action == "unchanged":
        output.progress(f"wrapper {result.name} already runs with these settings: nothing to do")
    stale = quietdown.check(wrapper, settings, undo=True, only_if_recorded=True)
    if stale is not None and stale.undone:
        output.progress(quietdown.QuietDown.UNDONE_NOTICE)
    if wait_seconds > 0:
        wrapper.wait_healthy(wait_seconds, progress=output.progress)
    data = dataclasses.asdict(result)
    data["password_source"] = password.source
    if as_json:
        output.print_json(data)
        return
    rows = [
        ("wrapper", f"{result.name} ({result.action})"),
        ("url", result.url),
        ("security", result.security),
        ("network", result.network),
        *((f"volume {v}", state) for v, state in result.volumes.items()),
        ("admin password file", f"{result.password_file} ({password.source})"),
    ]
    output.print_table(None, ["item", "value"], rows)
