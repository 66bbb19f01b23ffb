"""`dindjobs doctor`: a security and health audit of the wrapper; exit 1 when a check fails."""

from __future__ import annotations

import dataclasses
import os

import click

from dindjobs import output
from dindjobs.cli_support import exits_with, json_option, name_option, pass_app
from dindjobs.doctor.checks import HOST_SOCKETS, audit, failed
from dindjobs.errors import ExitCode
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.engine import connect


def _host_sockets() -> tuple[str, ...]:
    docker_host = os.environ.get("DOCKER_HOST", "")
    extra = (docker_host[len("unix://"):],) if docker_host.startswith("unix://") else ()
    return (*HOST_SOCKETS, *extra)


@click.command("doctor")
@name_option
@json_option
@pass_app
@exits_with
def command(app, name, as_json) -> int:
    """Audit the wrapper's security and health: each check ok, warn or fail, with a fix.

    Checks: the host's Docker socket is not mounted; the nested daemon is not on TCP without TLS;
    the security mode (privileged and caps are as good as host root); Jenkins security on and
    anonymous users unable to configure or build; the admin password neither a default nor in
    the container's environment; Jenkins published only on the address asked for; named,
    labelled volumes; /var/lib/docker not on overlayfs; the nested storage driver not vfs.
    Exit 1 when any check fails, or when there is no such wrapper.
    """
    app.override(name=name)
    settings = app.settings
    checks = audit(Wrapper(connect(), settings.name), settings, _host_sockets())
    bad = failed(checks)
    if as_json:
        output.print_json({"name": settings.name, "ok": not bad, "checks": [dataclasses.asdict(c) for c in checks]})
    else:
        output.print_table(None, ["status", "check", "detail", "fix"],
                           [(c.status.upper(), c.id, c.detail, c.fix or "") for c in checks])
        warned = sum(c.status == "warn" for c in checks)
        output.progress(f"doctor: {len(checks) - len(bad) - warned} ok, {warned} warn, {len(bad)} fail"
                        + (f" ({', '.join(c.id for c in bad)})" if bad else ""))
    return ExitCode.ERROR if bad else ExitCode.OK
