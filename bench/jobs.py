"""Scenarios 1-4: `dindjobs sync` against `jenkins-jobs update`, pair by pair.

Each round runs both tools back to back, in alternating order (dindjobs first in even rounds,
JJB first in odd ones), each against its own fresh stand-in process for a cold push; the no-op
and the one-change runs then reuse that tool's stand-in. Request counts come from the stand-in's
request log (reset before each run). Warm-up rounds are run and thrown away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import stats
from bench.gen import generate
from bench.proc import Run
from bench.tools import JJB, Client, Credentials, Dindjobs, StandinProc, timings

EDITED_TEMPLATE = 7  # the template the "one change" scenario edits (one job per project)
#: The slower Jenkins double: the stand-in with this much added to every request. A real Jenkins
#: answers a config.xml GET in a few to a few tens of milliseconds (XStream, disk, security);
#: the stand-in in about one.
SLOW_DELAY = 0.02
SPLIT = ("startup", "render", "reads", "compare", "apply")  # dindjobs' own split of its wall time


@dataclass
class Samples:
    """Every measured run of one (scenario, tool) cell, in round order."""

    seconds: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)
    split: list[dict] = field(default_factory=list)  # dindjobs --timings, one per run

    def add(self, run: Run, counts: dict) -> None:
        split = timings(run)
        if split is not None:
            self.split.append(split)
        self.seconds.append(run.seconds)
        self.rss.append(run.peak_rss_mib)
        self.cpu.append(run.cpu_seconds)
        self.requests.append(counts["total"])
        self.reads.append(counts["reads"])
        self.writes.append(counts["writes"])

    def to_json(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


class Cells:
    """Samples keyed by (scenario, tool label)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], Samples] = {}

    def __getitem__(self, key: tuple[str, str]) -> Samples:
        return self.data.setdefault(key, Samples())

    def to_json(self) -> dict:
        return {f"{s} | {t}": v.to_json() for (s, t), v in self.data.items()}


def _push(client: Client, standin: StandinProc, tree: Path, log: Callable[[str], None]) -> tuple[Run, dict]:
    standin.reset()
    run = client.push(standin, tree)
    counts = standin.counts()
    log(f"  {client.label:16} {run.seconds:7.2f} s  {run.peak_rss_mib:5.0f} MiB  {counts['reads']:6} GET "
        f"{counts['writes']:6} POST")
    return run, counts


def _order(round_no: int, pair: tuple[Client, Client]) -> tuple[Client, Client]:
    return pair if round_no % 2 == 0 else (pair[1], pair[0])


def run_small(work: Path, creds: Credentials, projects: int, templates: int, runs: int, warmup: int,
              log: Callable[[str], None]) -> Cells:
    """Cold push (workers 1 and 4), no-op and one change, on ``projects x templates`` jobs."""
    base = generate(work / "yaml-small", projects=projects, templates=templates).path
    edited = generate(work / "yaml-small-edited", projects=projects, templates=templates,
                      edited=EDITED_TEMPLATE).path
    cells = Cells()
    for r in range(warmup + runs):
        keep = r >= warmup
        log(f"round {r + 1}/{warmup + runs}{'' if keep else ' (warm-up)'}: {projects * templates} jobs")
        for workers in (1, 4):
            pair = (Dindjobs(work / f"dj-w{workers}", creds, workers), JJB(work / f"jjb-w{workers}", creds, workers))
            standins: dict[str, StandinProc] = {}
            try:
                for client in _order(r, pair):
                    client.cold()
                    standins[client.name] = StandinProc(work / f"home-{client.name}-w{workers}", creds)
                    run, counts = _push(client, standins[client.name], base, log)
                    if keep:
                        cells[(f"cold w{workers}", client.name)].add(run, counts)
                if workers == 4:
                    for scenario, tree in (("no-op", base), ("one change", edited)):
                        for client in _order(r, pair):
                            run, counts = _push(client, standins[client.name], tree, log)
                            if keep:
                                cells[(scenario, client.name)].add(run, counts)
            finally:
                for standin in standins.values():
                    standin.stop()
    return cells


def run_scale(work: Path, creds: Credentials, projects: int, templates: int, runs: int,
              log: Callable[[str], None]) -> Cells:
    """Cold push and no-op of ``projects x templates`` jobs, both tools with 4 workers.

    No warm-up rounds of its own: it runs after :func:`run_small`, whose rounds warm up the same
    code paths, and one round of it costs as much as the whole small series.
    """
    tree = generate(work / "yaml-scale", projects=projects, templates=templates).path
    cells = Cells()
    for r in range(runs):
        log(f"scale round {r + 1}/{runs}: {projects * templates} jobs")
        pair = (Dindjobs(work / "dj-scale", creds, 4), JJB(work / "jjb-scale", creds, 4))
        for (scenario, name), done in _cold_then_noop(work, creds, pair, r, tree, "scale", log).items():
            cells[(scenario, name)].add(*done)
    return cells


def _cold_then_noop(work: Path, creds: Credentials, pair: tuple[Client, Client], round_no: int, tree: Path,
                    tag: str, log: Callable[[str], None], request_delay: float = 0.0) -> dict:
    """One round: each client's cold push to a fresh stand-in of its own, then each one's no-op
    against it, in :func:`_order`; ``{("cold" | "no-op", client name): (run, counts)}``."""
    done: dict = {}
    standins: dict[str, StandinProc] = {}
    try:
        for client in _order(round_no, pair):
            client.cold()
            standins[client.name] = StandinProc(work / f"home-{client.name}-{tag}", creds,
                                                request_delay=request_delay)
            done[("cold", client.name)] = _push(client, standins[client.name], tree, log)
        for client in _order(round_no, pair):
            done[("no-op", client.name)] = _push(client, standins[client.name], tree, log)
    finally:
        for standin in standins.values():
            standin.stop()
    return done


def servers(delay: float = SLOW_DELAY) -> dict[str, float]:
    """The two servers a scenario runs against: the stand-in, and the slower double (the stand-in
    with ``delay`` seconds waited in every request); label -> that delay."""
    return {"stand-in": 0.0, f"double +{delay * 1000:.0f} ms": delay}


def _mib(values):
    return stats.summary(values, "MiB")


def _ratio(ours, theirs):
    if not ours or not theirs or any(t == 0 for t in theirs):
        return None
    return stats.ratio_summary(ours, theirs)


def small_rows(cells: Cells, jobs: int) -> list[dict]:
    """Table rows for :func:`run_small`."""
    rows = []
    for workers in (1, 4):
        d, j = cells[(f"cold w{workers}", "dindjobs")], cells[(f"cold w{workers}", "jenkins-jobs")]
        scen = f"1 cold push {jobs}, --workers {workers}"
        target = "<= 0.50x" if workers == 4 else ""
        rows += [
            stats.row(scen, "wall time", stats.summary(d.seconds, "s"), stats.summary(j.seconds, "s"),
                      _ratio(d.seconds, j.seconds), target),
            stats.row(scen, "requests", stats.summary(d.requests, "req"), stats.summary(j.requests, "req"),
                      _ratio(d.requests, j.requests)),
            stats.row(scen, "peak RSS", _mib(d.rss), _mib(j.rss), _ratio(d.rss, j.rss)),
        ]
    d, j = cells[("no-op", "dindjobs")], cells[("no-op", "jenkins-jobs")]
    scen = f"2 no-op {jobs} (JJB warm cache)"
    rows += [
        stats.row(scen, "wall time", stats.summary(d.seconds, "s"), stats.summary(j.seconds, "s"),
                  _ratio(d.seconds, j.seconds), "<= 0.50x"),
        *split_rows(scen, d),
        stats.row(scen, "requests", stats.summary(d.requests, "req"), stats.summary(j.requests, "req"),
                  _ratio(d.requests, j.requests), "reads only",
                  note=f"dindjobs writes: {max(d.writes)}, JJB writes: {max(j.writes)}"),
    ]
    d, j = cells[("one change", "dindjobs")], cells[("one change", "jenkins-jobs")]
    scen = "3 one template edited"
    rows += [
        stats.row(scen, "wall time", stats.summary(d.seconds, "s"), stats.summary(j.seconds, "s"),
                  _ratio(d.seconds, j.seconds)),
        stats.row(scen, "requests", stats.summary(d.requests, "req"), stats.summary(j.requests, "req"),
                  _ratio(d.requests, j.requests),
                  note=f"writes: dindjobs {max(d.writes)}, JJB {max(j.writes)}"),
    ]
    return rows


def scale_rows(cells: Cells, small: Cells, jobs: int, small_jobs: int) -> list[dict]:
    """Table rows for :func:`run_scale`, and dindjobs' growth from the small size."""
    rows = []
    for scenario, small_key, target in (("cold", "cold w4", "RSS <= 1.0x"), ("no-op", "no-op", "RSS <= 1.0x")):
        d, j = cells[(scenario, "dindjobs")], cells[(scenario, "jenkins-jobs")]
        scen = f"4 {scenario} {jobs}, --workers 4"
        rows += [
            stats.row(scen, "wall time", stats.summary(d.seconds, "s"), stats.summary(j.seconds, "s"),
                      _ratio(d.seconds, j.seconds)),
            stats.row(scen, "peak RSS", _mib(d.rss), _mib(j.rss), _ratio(d.rss, j.rss), target),
        ]
        ds = small[(small_key, "dindjobs")]
        js = small[(small_key, "jenkins-jobs")]
        if ds.seconds and js.seconds:
            factor = jobs / small_jobs
            dg = stats.growth(stats.summary(ds.seconds), stats.summary(d.seconds), factor)
            jg = stats.growth(stats.summary(js.seconds), stats.summary(j.seconds), factor)
            rows.append(stats.row(scen, f"time growth {small_jobs}->{jobs}",
                                  {"median": dg["ratio"], "min": dg["ratio"], "max": dg["ratio"], "unit": "x"},
                                  {"median": jg["ratio"], "min": jg["ratio"], "max": jg["ratio"], "unit": "x"},
                                  None, f"~{factor:.0f}x (linear)"))
    return rows


def split_rows(scenario: str, samples: Samples) -> list[dict]:
    """One row per part of dindjobs' wall time (render and reads overlap; see jobs.sync)."""
    rows = []
    for part in SPLIT:
        values = [t[part] for t in samples.split if part in t]
        if values:
            rows.append(stats.row(scenario, f"  dindjobs {part}", stats.summary(values, "s"), None, None))
    cached = [t.get("render_cached") for t in samples.split]
    if cached:
        rows[-1]["note"] = f"render cache hits: {sum(bool(c) for c in cached)}/{len(cached)}; config reads: " \
                           f"{max(t.get('read_requests', 0) for t in samples.split)}"
    return rows


def run_noop(work: Path, creds: Credentials, projects: int, templates: int, runs: int, warmup: int,
             log: Callable[[str], None], delay: float = SLOW_DELAY) -> Cells:
    """Cold push and no-op (``--workers 4``) against the stand-in and a slower Jenkins double
    (the stand-in with ``delay`` seconds added to every request), pair by pair."""
    tree = generate(work / "yaml-noop", projects=projects, templates=templates).path
    cells = Cells()
    for r in range(warmup + runs):
        keep = r >= warmup
        for server, request_delay in servers(delay).items():
            log(f"no-op round {r + 1}/{warmup + runs}{'' if keep else ' (warm-up)'}: {server}")
            pair = (Dindjobs(work / "dj-noop", creds, 4), JJB(work / "jjb-noop", creds, 4))
            done = _cold_then_noop(work, creds, pair, r, tree, "noop", log, request_delay)
            if keep:
                for (scenario, name), result in done.items():
                    cells[(f"{scenario} {server}", name)].add(*result)
    return cells


def noop_rows(cells: Cells, jobs: int) -> list[dict]:
    """Table rows for :func:`run_noop`: both scenarios per server, then dindjobs' split."""
    rows = []
    servers = sorted({s.split(" ", 1)[1] for s, _ in cells.data if s.startswith("cold ")}, key=len)
    for server in servers:
        for scenario in ("cold", "no-op"):
            d, j = cells[(f"{scenario} {server}", "dindjobs")], cells[(f"{scenario} {server}", "jenkins-jobs")]
            if not d.seconds:
                continue
            scen = f"10 {scenario} {jobs} w4, {server}"
            rows += [
                stats.row(scen, "wall time", stats.summary(d.seconds, "s"), stats.summary(j.seconds, "s"),
                          _ratio(d.seconds, j.seconds), "<= 0.50x"),
                stats.row(scen, "requests", stats.summary(d.requests, "req"), stats.summary(j.requests, "req"),
                          _ratio(d.requests, j.requests)),
            ]
            if scenario == "no-op":
                rows += split_rows(scen, d)
    return rows
