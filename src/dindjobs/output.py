"""Where output goes: data on stdout (text or JSON), progress and messages on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def stderr_console() -> Console:
    """A console for progress and messages; never mixes with data on stdout."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    """A console for human-readable data."""
    return Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Data as JSON on stdout, one document, sorted keys for stable diffs."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A simple table on stdout."""
    table = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout_console().print(table)


def progress(message: str) -> None:
    """One line of progress on stderr (as plain text when stderr is not a terminal: a sync
    prints a line per item, and a rich console costs a millisecond to set up)."""
    stream = sys.stderr
    if stream.isatty():
        stderr_console().print(message, markup=False)
    else:
        stream.write(message + "\n")
        stream.flush()
