"""What command modules share: the application context and common options."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click

from dindjobs.config import RedactingFilter, Settings, load_settings


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
            prompt = None
            if sys.stdin.isatty() and sys.stderr.isatty():
                def prompt(text: str) -> str:
                    return click.prompt(text, hide_input=True, err=True, default="", show_default=False)
            self._settings = load_settings(self.flags, prompt=prompt)
            # From here on, no log line may carry a secret value.
            redaction = RedactingFilter(self._settings.secrets())
            for handler in logging.getLogger().handlers:
                handler.addFilter(redaction)
        return self._settings

    def override(self, **flags: Any) -> None:
        """Command-level flags (e.g. `sync --workers`) that beat the global ones."""
        given = {k: v for k, v in flags.items() if v is not None}
        if given:
            self.flags.update(given)
            self._settings = None


pass_app = click.make_pass_decorator(App)


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
