"""Summaries, pair ratios, tables and the results history."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from bench import stats


def test_summary_is_median_min_max_of_the_samples():
    s = stats.summary([3.0, 1.0, 2.0, 10.0, 4.0], "s")
    assert (s["median"], s["min"], s["max"], s["n"], s["unit"]) == (3.0, 1.0, 10.0, 5, "s")
    assert stats.summary([1, 2, 3, 4])["median"] == 2.5
    with pytest.raises(ValueError):
        stats.summary([])


def test_ratios_are_taken_pair_by_pair_not_from_the_medians():
    ours, theirs = [1.0, 4.0, 3.0], [2.0, 2.0, 6.0]
    assert stats.pair_ratios(ours, theirs) == [0.5, 2.0, 0.5]
    r = stats.ratio_summary(ours, theirs)
    assert (r["median"], r["min"], r["max"], r["unit"]) == (0.5, 0.5, 2.0, "x")
    # The ratio of medians would be 3.0 / 2.0 = 1.5: a different (and wrong) answer for pairs.
    assert r["median"] != stats.summary(ours)["median"] / stats.summary(theirs)["median"]


def test_unpaired_or_zero_samples_are_refused():
    with pytest.raises(ValueError, match="unpaired"):
        stats.pair_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="zero"):
        stats.pair_ratios([1.0], [0])


def test_growth_per_unit_is_one_when_linear():
    g = stats.growth({"median": 2.0}, {"median": 20.0}, 10)
    assert g["ratio"] == 10.0 and g["per_unit"] == 1.0
    assert stats.growth({"median": 2.0}, {"median": 40.0}, 10)["per_unit"] == 2.0


def test_metrics_format_by_unit():
    assert stats.fmt_metric(stats.summary([0.0123, 0.02, 0.03], "s")) == "0.020 (0.012-0.030)"
    assert stats.fmt_metric(stats.summary([1022, 1022], "req")) == "1022"
    assert stats.fmt_metric(stats.summary([1.234, 1.5], "x")) == "1.37 (1.23-1.50)"
    assert stats.fmt_metric(None) == "-"


def test_tables_have_one_line_per_row_and_aligned_columns():
    rows = [stats.row("1 cold", "wall time", stats.summary([2.0, 3.0], "s"), stats.summary([4.0, 4.0], "s"),
                      stats.ratio_summary([2.0, 3.0], [4.0, 4.0]), "<= 1.00x"),
            stats.row("5 wait", "latency", stats.summary([0.05], "s"))]
    text = stats.text_table(rows).splitlines()
    assert len(text) == 4 and text[0].startswith("scenario")
    assert "2.50 (2.00-3.00)" in text[2] and "0.62 (0.50-0.75)" in text[2] and "<= 1.00x" in text[2]
    assert text[3].split()[-1] == "-"
    md = stats.markdown_table(rows).splitlines()
    assert md[0].startswith("| scenario |") and md[2].count("|") == len(stats.COLUMNS) + 1


def test_save_writes_latest_and_a_bounded_dated_history(tmp_path):
    for minute in range(4):
        stats.save({"rows": [stats.row("a", "b", {"median": float(minute), "min": 0, "max": 9, "unit": "s"})]},
                   tmp_path, now=datetime(2026, 1, 1, 12, minute), keep=3)
    stats.save({"rows": [], "quick": True}, tmp_path, now=datetime(2026, 1, 1, 13, 0), keep=3)
    names = sorted(p.name for p in (tmp_path / "history").iterdir())
    assert names == ["20260101-120200.json", "20260101-120300.json", "20260101-130000-quick.json"]
    # A quick run does not replace the last full results.
    assert json.loads((tmp_path / "latest-quick.json").read_text())["quick"] is True
    assert json.loads((tmp_path / "latest.json").read_text())["rows"][0]["ours"]["median"] == 3.0
    # The trend skips quick runs.
    assert stats.trend(tmp_path, ("a", "b")) == [("20260101-120200", 2.0), ("20260101-120300", 3.0)]
