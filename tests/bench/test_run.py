"""The closing verdicts: each target of issue 9 read from the right row."""

from __future__ import annotations

from bench import stats
from bench.run import targets


def _m(value, unit="s"):
    return {"median": value, "min": value, "max": value, "n": 5, "unit": unit}


def test_targets_read_the_workers_4_row_and_say_met_or_missed():
    rows = [
        stats.row("1 cold push 500, --workers 1", "wall time", _m(9), _m(3), _m(3.0, "x")),
        stats.row("1 cold push 500, --workers 4", "wall time", _m(2), _m(4), _m(0.5, "x")),
        stats.row("2 no-op 500 (JJB warm cache)", "wall time", _m(3), _m(2), _m(1.5, "x")),
        stats.row("2 no-op 500 (JJB warm cache)", "requests", _m(511, "req"), _m(0, "req"), None,
                  note="dindjobs writes: 0, JJB writes: 0"),
        stats.row("5 wait latency (20 starts)", "ready -> wait returns", _m(0.08)),
    ]
    lines = targets(rows)
    assert lines[0] == "cold push <= 1.0x JJB --workers 4: 0.50 (met)"
    assert lines[1] == "no-op <= 1.0x JJB warm cache: 1.50 (MISSED by 50%)"
    assert lines[2].endswith("not measured") and lines[4].endswith("not measured")
    assert lines[3] == "wait latency median <= 0.25 s: 0.08 (met)"
    assert lines[5] == "no-op sends only reads: dindjobs writes: 0, JJB writes: 0"
