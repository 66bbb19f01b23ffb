"""Measuring one child process: exit code, output, its own peak RSS, and the kill on timeout."""

from __future__ import annotations

import sys

import pytest

from bench.proc import combine, measure


def test_peak_rss_is_the_childs_own(tmp_path):
    small = measure([sys.executable, "-c", "pass"], log_dir=tmp_path)
    big = measure([sys.executable, "-c", "b = bytearray(120 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"],
                  log_dir=tmp_path)
    assert big.peak_rss_mib >= 120 > small.peak_rss_mib
    # Measured per child: the big one does not leak into the next measurement.
    again = measure([sys.executable, "-c", "pass"], log_dir=tmp_path)
    assert again.peak_rss_mib < 120
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
