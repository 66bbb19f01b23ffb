"""The `dindjobs` command: global options, command registration, and the error edge.

Command bodies live in ``dindjobs.commands.<name>``; this module only wires them up and turns
:class:`~dindjobs.errors.DindjobsError` into a one-line message and an exit code.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback

import click

from dindjobs import __version__
from dindjobs.cli_support import App, name_option
from dindjobs.config import redact
from dindjobs.errors import DindjobsError, ExitCode

# Each name is a module in dindjobs.commands exposing `command` of the same name, imported
# only when that command runs (or --help lists it): the Docker SDK and JJB cost ~0.3 s to import.
COMMAND_MODULES = [
    "config",
    "image",
    "up",
    "down",
    "status",
    "logs",
    "test",
    "wait",
    "standin",
    "sync",
    "verify",
    "backup",
    "restore",
    "doctor",
]

EPILOG = """\b
Exit codes: 0 done or in sync, 1 error, 2 changes pending (sync --plan),
3 partial failure (some items failed, the others were applied).
Secrets come from DINDJOBS_TOKEN(_FILE), DINDJOBS_PASSWORD(_FILE), the ini file
or the wrapper's state directory, never from the command line."""


def _conf_after_command(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_object(App).override(conf=value)


# `dindjobs sync --conf x.ini jobs/` is how people type it: every command accepts --conf too.
CONF_OPTION = click.Option(["--conf"], type=click.Path(dir_okay=False), expose_value=False, is_eager=True,
                           callback=_conf_after_command, help="JJB-style ini file (same as the global --conf).")


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use, in COMMAND_MODULES order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        extra = [name for name in self.commands if name not in COMMAND_MODULES]
        return COMMAND_MODULES + sorted(extra)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMAND_MODULES:
            module = importlib.import_module(f"dindjobs.commands.{name}")
            if not any(param.name == "conf" for param in module.command.params):
                module.command.params.append(CONF_OPTION)
            self.add_command(module.command, name)
        return self.commands.get(name)


@click.group(cls=LazyGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dindjobs")
@click.option("--conf", type=click.Path(dir_okay=False), help="JJB-style ini file ([jenkins] and [dindjobs]). Env: DINDJOBS_CONFIG.")
@click.option("--url", help="Jenkins URL. Env: DINDJOBS_URL. Default http://127.0.0.1:8080/.")
@click.option("--user", help="Jenkins user. Env: DINDJOBS_USER.")
@click.option("--password-file", type=click.Path(dir_okay=False), help="File holding the password. Env: DINDJOBS_PASSWORD_FILE.")
@click.option("--token-file", type=click.Path(dir_okay=False), help="File holding an API token. Env: DINDJOBS_TOKEN_FILE.")
@name_option
@click.option("--timeout", type=float, help="Seconds for each HTTP request. Default 30.")
@click.option("--debug", is_flag=True, help="Verbose logs and tracebacks (secrets stay hidden).")
@click.pass_context
def group(ctx: click.Context, debug: bool, **flags: object) -> None:
    """Run Jenkins jobs as code inside a Docker-in-Docker wrapper.

    The wrapper is one container holding Jenkins and its own Docker daemon: jobs build images in
    that nested daemon, never in the host's, and everything lives in two volumes.
    """
    ctx.obj = App(flags, debug)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the group and map errors to one line and an exit code."""
    ctx = None
    try:
        with group.make_context("dindjobs", list(sys.argv[1:] if argv is None else argv)) as ctx:
            group.invoke(ctx)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # Exit 2 means "changes pending" (sync --plan); a usage error is an error like any other.
        command = exc.ctx.command_path if exc.ctx is not None else "dindjobs"
        click.echo(f"dindjobs: error: {exc.format_message().rstrip('.')} (see `{command} --help`)", err=True)
        sys.exit(ExitCode.ERROR)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("dindjobs: aborted", err=True)
        sys.exit(ExitCode.ERROR)
    except DindjobsError as exc:
        app = ctx.obj if ctx is not None else None
        secrets = _secrets_of(app)
        if app is not None and app.debug:
            click.echo(redact("".join(traceback.format_exc()), secrets), err=True)
        # The details (e.g. JJB's "In project ..." chain and the offending line), then the error
        # itself, once, as the last line.
        for line in exc.details:
            click.echo(redact(line, secrets), err=True)
        click.echo(redact(f"dindjobs: error: {exc.one_line()}", secrets), err=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        click.echo("dindjobs: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the edge: no traceback without --debug
        app = ctx.obj if ctx is not None else None
        secrets = _secrets_of(app)
        if app is not None and app.debug:
            click.echo(redact("".join(traceback.format_exc()), secrets), err=True)
        else:
            click.echo("dindjobs: run again with --debug for the traceback", err=True)
        click.echo(redact(f"dindjobs: internal error: {type(exc).__name__}: {exc}", secrets), err=True)
        sys.exit(ExitCode.ERROR)


def _secrets_of(app: App | None) -> list[str]:
    if app is None or app._settings is None:
        return []
    return app.settings.secrets()

