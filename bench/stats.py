"""Summaries the benchmarks report: median/min/max, pair-by-pair ratios, tables, history.

Pure functions on lists of numbers and plain dicts, so they are unit-tested without running
anything. A *metric* is a dict ``{"median", "min", "max", "n", "unit"}``; a *row* is one line of
the results table: a scenario, a measure, one or two metrics and the ratio between them.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

HISTORY_KEEP = 20  # dated result files kept under results/history/


def summary(values: Sequence[float], unit: str = "") -> dict:
    """Median, min and max of ``values`` (at least one)."""
    if not values:
        raise ValueError("no values to summarise")
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "unit": unit}


def pair_ratios(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
    """``ours[i] / theirs[i]`` for each pair measured back to back (same length required)."""
    if len(ours) != len(theirs):
        raise ValueError(f"unpaired samples: {len(ours)} vs {len(theirs)}")
    if any(t == 0 for t in theirs):
        raise ValueError("cannot divide by a zero sample")
    return [o / t for o, t in zip(ours, theirs, strict=True)]


def ratio_summary(ours: Sequence[float], theirs: Sequence[float]) -> dict:
    """The summary of :func:`pair_ratios` (unit ``x``)."""
    return summary(pair_ratios(ours, theirs), "x")


def growth(small: dict, large: dict, factor: float) -> dict:
    """How a median grew between two sizes ``factor`` apart: ``ratio`` and ``per_unit`` (1.0 = linear)."""
    ratio = large["median"] / small["median"]
    return {"ratio": ratio, "factor": factor, "per_unit": ratio / factor}


def fmt(value: float | None, unit: str = "") -> str:
    """A number for the table: seconds to 2-3 significant places, counts as integers."""
    if value is None:
        return "-"
    if unit in ("req", "n"):
        return f"{value:.0f}"
    if unit == "MiB":
        return f"{value:.0f}"
    if unit == "x":
        return f"{value:.2f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def fmt_metric(metric: dict | None) -> str:
    """``median (min-max)``, or ``-``."""
    if not metric:
        return "-"
    unit = metric.get("unit", "")
    med, lo, hi = (fmt(metric[k], unit) for k in ("median", "min", "max"))
    return med if lo == hi else f"{med} ({lo}-{hi})"


def row(scenario: str, measure: str, ours: dict | None, theirs: dict | None = None,
        ratio: dict | None = None, target: str = "", note: str = "") -> dict:
    """One table row; ``ours`` is dindjobs (or nested), ``theirs`` JJB (or host)."""
    return {"scenario": scenario, "measure": measure, "ours": ours, "theirs": theirs, "ratio": ratio,
            "target": target, "note": note}


COLUMNS = ("scenario", "measure", "dindjobs / nested", "JJB / host", "ratio (pairs)", "target")


def table_rows(rows: Sequence[dict]) -> list[list[str]]:
    """The rows as text cells, in :data:`COLUMNS` order."""
    cells = []
    for r in rows:
        unit = (r["ours"] or r["theirs"] or {}).get("unit", "")
        measure = f"{r['measure']} [{unit}]" if unit else r["measure"]
        cells.append([r["scenario"], measure, fmt_metric(r["ours"]), fmt_metric(r["theirs"]),
                      fmt_metric(r["ratio"]), r.get("target", "")])
    return cells


def text_table(rows: Sequence[dict]) -> str:
    """A fixed-width table for the terminal."""
    cells = [list(COLUMNS)] + table_rows(rows)
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(COLUMNS))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[dict]) -> str:
    """The same table in Markdown (for the README)."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(c.replace("|", "/") for c in cells) + " |" for cells in table_rows(rows)]
    return "\n".join(out)


def save(results: dict, directory: str | Path, now: datetime | None = None, keep: int = HISTORY_KEEP) -> Path:
    """Write ``latest.json`` and a dated copy under ``history/``, keeping the newest ``keep``.

    A quick run writes ``latest-quick.json`` instead, so it never replaces the last full results.
    """
    directory = Path(directory)
    history = directory / "history"
    history.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    text = json.dumps(results, indent=2, sort_keys=True) + "\n"
    (directory / ("latest-quick.json" if results.get("quick") else "latest.json")).write_text(text, encoding="utf-8")
    dated = history / f"{stamp}{'-quick' if results.get('quick') else ''}.json"
    dated.write_text(text, encoding="utf-8")
    for old in sorted(history.glob("*.json"))[:-keep]:
        old.unlink()
    return dated


def trend(directory: str | Path, key: tuple[str, str], last: int = 5) -> list[tuple[str, float]]:
    """Median of one row (scenario, measure) over the newest ``last`` full runs in ``history/``."""
    points = []
    for path in sorted(Path(directory, "history").glob("*.json")):
        if path.stem.endswith("-quick"):
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        for r in data.get("rows", []):
            if (r["scenario"], r["measure"]) == key and r.get("ours"):
                points.append((path.stem, r["ours"]["median"]))
    return points[-last:]
