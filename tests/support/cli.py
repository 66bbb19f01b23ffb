"""Running the real `dindjobs` entry point inside a test."""

from __future__ import annotations

from dindjobs import cli


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``dindjobs ARGV`` in-process; returns (exit code, stdout, stderr)."""
    code = 0
    try:
        cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err
