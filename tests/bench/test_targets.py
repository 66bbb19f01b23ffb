"""Scenario 9's rows (three targets against one) and their verdicts."""

from __future__ import annotations

from bench import targets as multi
from bench.run import targets


def test_rows_put_three_targets_next_to_one_and_the_verdicts_read_them():
    data = {"cold 1": [2.0, 4.0], "cold 3": [2.4, 6.8], "no-op 1": [1.0], "no-op 3": [1.5]}
    rows = multi.rows(data, 500)
    assert [(r["scenario"], r["target"]) for r in rows] == [("9 cold 3 targets x 500", "<= 1.50x"),
                                                          ("9 no-op 3 targets x 500", "<= 1.30x")]
    assert rows[0]["ours"]["median"] == 4.6 and rows[0]["theirs"]["median"] == 3.0
    assert rows[0]["ratio"]["median"] == 1.45  # the median of the per-round ratios 1.2 and 1.7
    lines = targets(rows)
    assert "3 targets cold <= 1.5x one target: 1.45 (met)" in lines
    assert "3 targets no-op <= 1.3x one target: 1.50 (MISSED by 15%)" in lines


def test_rows_skip_a_scenario_that_was_not_run():
    assert multi.rows({"cold 1": [], "cold 3": [], "no-op 1": [1.0], "no-op 3": [1.1]}, 500)[0]["scenario"] \
        == "9 no-op 3 targets x 500"
