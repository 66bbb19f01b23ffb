"""Scenario 8's figures from raw samples: extra wall time next to the restart's own duration."""

from __future__ import annotations

from bench.restart import rows


def test_extra_time_is_paired_run_by_run_and_failures_are_counted():
    data = {"undisturbed": [3.0, 4.0], "disturbed": [5.5, 6.0], "restart": [2.0, 2.5], "exit_codes": [0, 0, 0, 3]}
    extra, restart, ratio = rows(data, 500)
    assert extra["scenario"] == "8 restart during cold sync 500"
    assert (extra["ours"]["median"], extra["ours"]["min"], extra["ours"]["max"]) == (2.25, 2.0, 2.5)
    assert "1 of 4 runs did not exit 0" in extra["note"]
    assert restart["ours"]["median"] == 2.25
    assert (ratio["ours"]["min"], ratio["ours"]["max"]) == (0.8, 1.25)


def test_a_sync_that_ended_before_the_restart_gives_no_figure():
    data = {"undisturbed": [3.0], "disturbed": [3.1], "restart": [None], "exit_codes": [0, 0]}
    (only,) = rows(data, 100)
    assert only["ours"] is None and "ended before the restart" in only["note"]
