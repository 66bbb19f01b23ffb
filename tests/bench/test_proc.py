"""Measuring one child process: exit code, output, its own peak RSS, and the kill on timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.proc import combine, measure

PEAKS = """
import sys
from pathlib import Path
from bench.proc import measure
log_dir = Path(sys.argv[1])
small = measure([sys.executable, "-c", "pass"], log_dir=log_dir)
big = measure([sys.executable, "-c", "b = bytearray(120 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"],
              log_dir=log_dir)
again = measure([sys.executable, "-c", "pass"], log_dir=log_dir)
print(small.peak_rss_mib, big.peak_rss_mib, again.peak_rss_mib)
"""


def test_peak_rss_is_the_childs_own(tmp_path):
    # Measured from a fresh interpreter, as `python -m bench` does: a child's ru_maxrss starts at
    # the measuring process's own peak (see bench/proc.py), and pytest's grows with the suite.
    done = subprocess.run([sys.executable, "-c", PEAKS, str(tmp_path)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], check=True)
    small, big, again = (float(x) for x in done.stdout.split())
    assert big >= 120 > small
    assert again < 120  # measured per child: the big one does not leak into the next measurement
    assert list(tmp_path.iterdir()) == []  # output files are removed


def test_exit_code_and_output_are_kept(tmp_path):
    run = measure([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                  log_dir=tmp_path)
    assert (run.returncode, run.stdout, run.stderr) == (3, "out\n", "err\n")
    with pytest.raises(RuntimeError, match="exited 3"):
        run.check()
    assert run.check(ok=(0, 3)) is run


def test_a_command_past_its_timeout_is_killed(tmp_path):
    run = measure([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5, log_dir=tmp_path)
    assert run.returncode == -9 and "killed" in run.stderr


def test_combined_runs_add_up_and_keep_the_highest_peak(tmp_path):
    a = measure([sys.executable, "-c", "print(1)"], log_dir=tmp_path)
    b = measure([sys.executable, "-c", "print(2)"], log_dir=tmp_path)
    both = combine([a, b])
    assert both.seconds == a.seconds + b.seconds and both.peak_rss_mib == max(a.peak_rss_mib, b.peak_rss_mib)
    assert both.stdout == "1\n2\n" and "&&" in both.argv and both.returncode == 0
