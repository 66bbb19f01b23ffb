"""`dindjobs status`: container state and health, security, URL, volumes, both halves reachable."""

from __future__ import annotations

import dataclasses

import click

from dindjobs import output
from dindjobs.backup import quietdown
from dindjobs.cli_support import json_option, name_option, pass_app
from dindjobs.wrapper.container import Wrapper, no_wrapper
from dindjobs.wrapper.engine import connect


def _size(size: object) -> str:
    if not isinstance(size, int):
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


@click.command("status")
@name_option
@json_option
@pass_app
def command(app, name, as_json) -> None:
    """Show the wrapper: state, health, security mode, URL, volumes and their sizes, and whether
    the nested Docker daemon and Jenkins answer. Exit 1 when there is no such wrapper."""
    app.override(name=name)
    settings = app.settings
    wrapper = Wrapper(connect(), settings.name)
    report = wrapper.status(http_timeout=min(settings.timeout, 10.0))
    if report["state"] == "absent":
        raise no_wrapper(settings.name)
    if report["state"] == "running" and not report["jenkins"]["reachable"]:  # not worth the client's retries
        quiet = quietdown.QuietDown(None, error="Jenkins does not answer")
    else:
        quiet = quietdown.check(wrapper, settings, undo=True)
    report["quiet_down"] = dataclasses.asdict(quiet)
    if quiet.undone:
        output.progress(quietdown.QuietDown.UNDONE_NOTICE)
    if as_json:
        output.print_json(report)
        return
    nested = report["nested_daemon"]
    jenkins = report["jenkins"]
    rows = [
        ("wrapper", report["name"]),
        ("state", report["state"] if report["managed"] or report["state"] == "absent" else f"{report['state']} (not managed by dindjobs)"),
        ("health", report["health"]),
        ("security", report["security"]),
        ("network", report["network"]),
        ("url", report["url"]),
        *((f"volume {v['name']}", _size(v["size"]) if v["exists"] else "absent") for v in report["volumes"]),
        ("nested daemon", f"reachable ({nested['id']})" if nested["reachable"] else "not reachable"),
        ("jenkins", f"reachable (HTTP {jenkins.get('status')}, {jenkins.get('server') or 'not identified'})"
         if jenkins["reachable"] else "not reachable"),
        ("quiet-down", quiet.describe()),
    ]
    output.print_table(None, ["item", "value"], rows)
