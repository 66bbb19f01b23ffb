"""The closing verdicts: each target of issue 9 read from the right row."""

from __future__ import annotations

from bench import jobs, stats
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
        stats.row("10 no-op 500 w4, stand-in", "wall time", _m(1), _m(2), _m(0.6, "x")),
        stats.row("10 no-op 500 w4, double +20 ms", "wall time", _m(1), _m(2.5), _m(0.4, "x")),
        stats.row("9 no-op 3 targets x 500, stand-in", "wall time", _m(1.2), _m(1), _m(1.2, "x")),
        stats.row("9 cold 3 targets x 500, double +20 ms", "wall time", _m(1.6), _m(1), _m(1.6, "x")),
    ]
    lines = targets(rows)
    assert lines[0] == "cold push <= 0.5x JJB --workers 4: 0.50 (met)"
    assert lines[1] == "no-op <= 0.5x JJB warm cache: 1.50 (MISSED by 200%)"
    assert lines[2].endswith("not measured") and lines[4].endswith("not measured")
    assert lines[3] == "no-op <= 0.5x JJB, stand-in: 0.60 (MISSED by 20%)"
    assert lines[5] == "no-op <= 0.5x JJB, slower double: 0.40 (met)"
    assert lines[6].endswith("not measured")
    assert lines[8] == "wait latency median <= 0.25 s: 0.08 (met)"
    assert lines[10] == "no-op sends only reads: dindjobs writes: 0, JJB writes: 0"
    # the three-target rows (scenario 9) and the no-op rows (scenario 10) never stand in for each other
    assert lines[11].startswith("3 targets cold") and lines[11].endswith("stand-in: not measured")
    assert lines[12] == "3 targets no-op <= 1.3x one target, stand-in: 1.20 (met)"
    assert lines[13] == "3 targets cold <= 1.5x one target, slower double: 1.60 (MISSED by 7%)"
    assert lines[14].endswith("slower double: not measured")


def test_noop_rows_pair_both_servers_and_split_our_time():
    cells = jobs.Cells()
    for server, ours, theirs in (("stand-in", 0.5, 2.0), ("double +20 ms", 1.0, 2.0)):
        for scenario in ("cold", "no-op"):
            d, j = cells[(f"{scenario} {server}", "dindjobs")], cells[(f"{scenario} {server}", "jenkins-jobs")]
            for samples, seconds in ((d, ours), (j, theirs)):
                samples.seconds += [seconds, seconds * 1.2]
                samples.requests += [501, 501]
            d.split += [{"startup": 0.2, "render": 0.05, "reads": 0.3, "compare": 0.01, "render_cached": True,
                         "read_requests": 501}] * 2
    rows = jobs.noop_rows(cells, 500)
    by = {(r["scenario"], r["measure"]): r for r in rows}
    wall = by[("10 no-op 500 w4, double +20 ms", "wall time")]
    assert wall["ratio"]["median"] == 0.5 and wall["target"] == "<= 0.50x"
    assert by[("10 no-op 500 w4, stand-in", "wall time")]["ratio"]["median"] == 0.25
    assert by[("10 no-op 500 w4, stand-in", "  dindjobs reads")]["ours"]["median"] == 0.3
    assert "render cache hits: 2/2" in by[("10 no-op 500 w4, stand-in", "  dindjobs compare")]["note"]
    assert ("10 cold 500 w4, stand-in", "  dindjobs reads") not in by
