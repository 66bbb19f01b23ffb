"""Where output goes: data on stdout (text or JSON), progress and messages on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.cells import cell_len
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
    """A simple table on stdout: rich's, fitted to the terminal, or the same box drawn line by
    line when stdout is a pipe or file (one line per row, never folded, and fast: a sync's
    table has a row per item, and rich takes about a millisecond a row)."""
    cells = [["" if cell is None else " ".join(str(cell).splitlines()) for cell in row] for row in rows]
    if not sys.stdout.isatty():
        sys.stdout.write(plain_table(title, columns, cells))
        sys.stdout.flush()
        return
    table = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*row)
    stdout_console().print(table)


def plain_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``rows`` in the box rich draws by default (heavy head), each column as wide as its widest cell."""
    widths = [max([cell_len(column), *(cell_len(row[i]) for row in rows)]) for i, column in enumerate(columns)]

    def rule(left: str, fill: str, joint: str, right: str) -> str:
        return left + joint.join(fill * (w + 2) for w in widths) + right

    def line(bar: str, values: Sequence[str]) -> str:
        return bar + bar.join(f" {v}{' ' * (w - cell_len(v))} " for v, w in zip(values, widths, strict=True)) + bar

    out = [title] if title else []
    out += [rule("┏", "━", "┳", "┓"), line("┃", columns), rule("┡", "━", "╇", "┩")]
    out += [line("│", row) for row in rows]
    out.append(rule("└", "─", "┴", "┘"))
    return "\n".join(out) + "\n"


def progress(message: str) -> None:
    """One line of progress on stderr (as plain text when stderr is not a terminal: a sync
    prints a line per item, and a rich console costs a millisecond to set up)."""
    stream = sys.stderr
    if stream.isatty():
        stderr_console().print(message, markup=False)
    else:
        stream.write(message + "\n")
        stream.flush()
