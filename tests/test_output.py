"""output.py: tables and progress as a person reads them, on a terminal and through a pipe."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from dindjobs import output

ROWS = [("job team/api-build", "create", "ok", "not in Jenkins"),
        ("view Team \u00e9quipe", "update", "failed", "500 Jenkins rejected the XML"),
        ("folder 日本", "delete", "skipped", "")]
COLUMNS = ["item", "action", "result", "reason"]


def rich_rendering(title, columns, rows) -> str:
    table = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=200, highlight=False, soft_wrap=True, color_system=None).print(table)
    return buffer.getvalue()


def test_the_piped_table_is_the_box_rich_draws():
    for title, rows in ((None, ROWS), ("Items", ROWS[:1]), (None, [])):
        assert output.plain_table(title, COLUMNS, rows) == rich_rendering(title, COLUMNS, rows)


def test_a_piped_table_is_one_line_per_row_however_long(capsys):
    long_reason = "x" * 300
    output.print_table(None, ["item", "reason"], [("job a", long_reason), ("job b", "two\nlines")])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6  # top, head, rule, two rows, bottom
    assert long_reason in lines[3] and "two lines" in lines[4]


def test_progress_is_plain_lines_on_stderr(capsys):
    output.progress("[1/2] create job [a]: ok")
    output.progress("[2/2] create job b: ok")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "[1/2] create job [a]: ok\n[2/2] create job b: ok\n"  # brackets are not markup
