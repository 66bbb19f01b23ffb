"""What command modules share: the application context and common options."""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click

from dindjobs import output
from dindjobs.config import RedactingFilter, Settings, load_settings
from dindjobs.targets import Target, resolve_targets


class App:
    """Per-invocation state: global flags and lazily resolved settings."""

    def __init__(self, flags: Mapping[str, Any], debug: bool) -> None:
        self.flags = dict(flags)
        self.debug = debug
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """Settings resolved on first use (so `--help` never reads files or prompts)."""
        if self._settings is None:
            self._settings = load_settings(self.flags, prompt=_prompt(), wrapper_url=wrapper_url)
            _announce([self._settings])
        return self._settings

    def targets(self, names: tuple[str, ...], all_targets: bool) -> list[Target] | None:
        """The targets of ``--target``/``--all-targets``, or None when neither was given (the
        command then uses :attr:`settings`, as it always did)."""
        if not names and not all_targets:
            return None
        targets = resolve_targets(names, all_targets, self.flags, prompt=_prompt(), wrapper_url=wrapper_url)
        _announce([t.settings for t in targets])
        return targets

    def override(self, **flags: Any) -> None:
        """Command-level flags (e.g. `sync --workers`) that beat the global ones."""
        given = {k: v for k, v in flags.items() if v is not None}
        if given:
            self.flags.update(given)
            self._settings = None


def _prompt() -> Callable[[str], str] | None:
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None

    def prompt(text: str) -> str:
        return click.prompt(text, hide_input=True, err=True, default="", show_default=False)
    return prompt


def _announce(resolved: list[Settings]) -> None:
    for settings in resolved:
        for warning in settings.warnings:
            output.progress(f"warning: {warning}")
    # From here on, no log line may carry a secret value.
    redaction = RedactingFilter([secret for settings in resolved for secret in settings.secrets()])
    for handler in logging.getLogger().handlers:
        handler.addFilter(redaction)


pass_app = click.make_pass_decorator(App)


def wrapper_url(name: str) -> str | None:
    """The URL recorded on the wrapper container called ``name`` (None when there is none).

    The Docker SDK is imported only here, when a command needs its target (it costs ~0.2 s)."""
    container = importlib.import_module("dindjobs.wrapper.container")
    return container.Wrapper(container.connect(timeout=5), name).url


def name_option(func: Callable) -> Callable:
    """``--name``: the wrapper a command is about (one definition for every command)."""
    return click.option(
        "--name", help="Wrapper name (container and volume prefix); a command's own --name beats the "
        "global one. Env: DINDJOBS_NAME. Default dindjobs."
    )(func)


def targets_option(func: Callable) -> Callable:
    """``--target NAME`` (repeatable) and ``--all-targets``: run against several Jenkins."""
    func = click.option(
        "--all-targets", is_flag=True,
        help="Every Jenkins section of the ini file ([jenkins], [staging], ...)."
    )(func)
    return click.option(
        "--target", "target_names", multiple=True, metavar="NAME",
        help="A Jenkins to run against (repeatable): an ini section in JJB's format ([jenkins] is the "
        "default) or a local wrapper of that name."
    )(func)


def json_option(func: Callable) -> Callable:
    """``--json``: print machine-readable data on stdout instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout."
    )(func)


def exits_with(func: Callable) -> Callable:
    """Let a command body return an exit code (int) instead of calling sys.exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        code = func(*args, **kwargs)
        if code:
            raise SystemExit(int(code))

    return wrapper
