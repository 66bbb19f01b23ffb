"""The nested-build benchmark's pure parts: its Dockerfile, CPU counters and the experiments table."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench import nested, stats


def test_dockerfile_runs_every_step_with_the_file_count():
    text = nested.dockerfile("base:tag", 12)
    lines = text.splitlines()
    assert lines[:2] == ["FROM base:tag", "USER root"]
    assert [line for line in lines if line.startswith("RUN ")] == [f"RUN {s.format(files=12)}" for s in nested.STEPS]
    assert "-lt 12 ]" in text


def test_cpu_seconds_counts_a_busy_process_and_skips_vanished_ones():
    busy = "x = 0\nfor i in range(10**7): x += i\nimport sys\nsys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", busy], stdin=subprocess.PIPE)
    try:
        seen = 0.0
        for _ in range(600):
            seen = nested.cpu_seconds([child.pid, 2**22 + 1])  # the second PID does not exist
            if seen >= 0.2:
                break
            time.sleep(0.05)
        assert seen >= 0.2
        assert nested.cpu_seconds([2**22 + 1]) == 0
    finally:
        child.communicate(b"")


def test_experiment_table_gives_the_pair_ratios_with_their_range():
    data = {"nested": [11.0, 12.0, 30.0], "host": [10.0, 10.0, 20.0], "nested_cpu": [4.0, 4.0, 4.0],
            "host_cpu": [2.0, 2.0, 2.0], "nested_version": "26.1.5"}
    data["ratio"] = stats.ratio_summary(data["nested"], data["host"])
    table = nested.experiment_table({"default": data}).splitlines()
    assert table[0].startswith("| variant | nested dockerd | pairs |")
    assert table[2].split(" | ")[:3] == ["| default", "26.1.5", "3"]
    assert table[2].endswith("| 1.20 (1.10-1.50) | 1.10 | 2.00 |")


def test_move_to_root_cpu_cgroup_writes_each_pid_to_both_v1_hierarchies(tmp_path):
    for controller in ("cpu", "cpuacct"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").write_text("")
    nested.move_to_root_cpu_cgroup([4242], root=tmp_path)
    assert (tmp_path / "cpu" / "cgroup.procs").read_text() == "4242\n"
    assert (tmp_path / "cpuacct" / "cgroup.procs").read_text() == "4242\n"


def test_move_to_root_cpu_cgroup_refuses_without_a_v1_hierarchy(tmp_path):
    with pytest.raises(RuntimeError, match="no cgroup v1 cpu hierarchy"):
        nested.move_to_root_cpu_cgroup([4242], root=tmp_path)
