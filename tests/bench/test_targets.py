"""Scenario 9's rows (three targets against one, on each kind of server) and their verdicts."""

from __future__ import annotations

import pytest

from bench import targets as multi
from bench.run import targets


def test_the_part_before_the_targets_start_is_read_from_the_timings_line():
    stderr = ('[jenkins] [1/2] create job a: ok (0.01 s)\n'
              'dindjobs timings: {"render": 0.91, "targets_started": 1.37}\n'
              '[jenkins] dindjobs timings: {"render": 0.0, "total": 2.0}\n')
    assert multi._before_targets(stderr) == 1.37
    assert multi._before_targets('dindjobs timings: {"render": 0.9, "total": 3.0}\n') == 0.0


def test_rows_put_three_targets_next_to_one_and_the_verdicts_read_them():
    data = {"stand-in": {"cold 1": [2.0, 4.0], "cold 3": [2.4, 6.8], "no-op 1": [1.0], "no-op 3": [1.5]},
            "double +20 ms": {"cold 1": [3.0], "cold 3": [3.3], "no-op 1": [], "no-op 3": []}}
    rows = multi.rows(data, 500, cores=2)
    assert [(r["scenario"], r["target"]) for r in rows] == [
        ("9 cold 3 targets x 500, stand-in", "<= 1.50x"), ("9 no-op 3 targets x 500, stand-in", "<= 1.30x"),
        ("9 cold 3 targets x 500, double +20 ms", "<= 1.50x")]
    assert rows[0]["ours"]["median"] == 4.6 and rows[0]["theirs"]["median"] == 3.0
    assert rows[0]["ratio"]["median"] == 1.45  # the median of the per-round ratios 1.2 and 1.7
    lines = targets(rows)
    assert "3 targets cold <= 1.5x one target, stand-in: 1.45 (met)" in lines
    assert "3 targets no-op <= 1.3x one target, stand-in: 1.50 (MISSED by 15%)" in lines
    assert "3 targets cold <= 1.5x one target, slower double: 1.10 (met)" in lines
    assert "3 targets no-op <= 1.3x one target, slower double: not measured" in lines


def test_the_cpu_of_client_and_servers_gives_the_floor_no_schedule_beats_on_these_cores():
    data = {"stand-in": {"no-op 1": [1.0, 1.2], "no-op 3": [1.5, 1.6],
                         "no-op 1 client cpu": [0.9, 1.0], "no-op 3 client cpu": [1.8, 2.2],
                         "no-op 1 servers cpu": [0.2, 0.3], "no-op 3 servers cpu": [0.6, 0.8],
                         "no-op 3 serial": [0.4, 0.6], "cold 1": [], "cold 3": []}}
    rows = multi.rows(data, 500, cores=2)
    assert [r["measure"] for r in rows] == ["wall time", "client CPU", "servers CPU", "floor on 2 cores"]
    client, servers, floor = rows[1:]
    assert client["ours"]["median"] == 2.0 and client["theirs"]["median"] == 0.95
    assert servers["ratio"]["median"] == pytest.approx((3 + 0.8 / 0.3) / 2)
    # 0.4 + (1.8 + 0.6 - 0.4) / 2 = 1.4 s against 1.0 s, 0.6 + (2.2 + 0.8 - 0.6) / 2 = 1.8 s against 1.2 s
    assert floor["ours"]["median"] == pytest.approx(1.6)
    assert floor["ratio"]["min"] == pytest.approx(1.4) and floor["ratio"]["max"] == pytest.approx(1.5)
    # the verdict reads the wall time (1.5 and 1.33 a round), never the floor
    assert "3 targets no-op <= 1.3x one target, stand-in: 1.42 (MISSED by 9%)" in targets(rows)
