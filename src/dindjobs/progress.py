"""The progress callback every long operation takes: one line of text per call (the CLI prints it)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    """A progress callback that discards messages."""
