"""Scenario 9's rows (three targets against one, on each kind of server) and their verdicts."""

from __future__ import annotations

from bench import targets as multi
from bench.run import targets


def test_rows_put_three_targets_next_to_one_and_the_verdicts_read_them():
    data = {"stand-in": {"cold 1": [2.0, 4.0], "cold 3": [2.4, 6.8], "no-op 1": [1.0], "no-op 3": [1.5]},
            "double +20 ms": {"cold 1": [3.0], "cold 3": [3.3], "no-op 1": [], "no-op 3": []}}
    rows = multi.rows(data, 500)
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
