"""`make bench`: every scenario of issue 9, one table on stdout, JSON in bench/results/.

Usage: ``python -m bench [--quick] [--no-docker] [--only jobs,scale,wait,restart,targets,nested] [--out DIR]``.
Progress goes to stderr, the table to stdout. Benchmarks are not tests: nothing here fails
because a figure is slow; the closing lines say which targets are met and by how much.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench import jobs, nested, restart, stats, tools, waitlat
from bench import targets as multi
from bench.tools import BIN, REPO, Credentials

RESULTS = REPO / "bench" / "results"
SECTIONS = ("jobs", "noop", "scale", "wait", "restart", "targets", "nested")


@dataclass(frozen=True)
class Config:
    """How much of everything to run."""

    projects: int = 5  # x templates = the small tree (500 jobs)
    templates: int = 100
    runs: int = 5
    warmup: int = 1
    scale_projects: int = 50  # 5 000 jobs
    scale_runs: int = 5
    wait_samples: int = 20
    wait_low: float = 0.5
    wait_high: float = 1.5
    build_runs: int = 5
    build_files: int = 3000
    start_runs: int = 5
    restart_runs: int = 3
    targets_runs: int = 3


FULL = Config()
QUICK = Config(templates=20, runs=3, warmup=0, scale_projects=25, scale_runs=1, wait_samples=5, build_runs=1,
               build_files=1000, start_runs=1, restart_runs=1,
               targets_runs=1)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict:
    return {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "jenkins-jobs": _version([str(BIN / "jenkins-jobs"), "--version"]),
            "dindjobs_src": str(tools.SRC)}


def run(cfg: Config, sections: tuple[str, ...], work: Path) -> dict:
    """Run ``sections`` with ``cfg``; returns the results document (rows, raw samples, facts)."""
    creds = Credentials(work / "creds")
    rows: list[dict] = []
    raw: dict = {}
    seconds: dict = {}
    small_jobs = cfg.projects * cfg.templates
    small = jobs.Cells()
    if "jobs" in sections:
        t = time.monotonic()
        small = jobs.run_small(work, creds, cfg.projects, cfg.templates, cfg.runs, cfg.warmup, log)
        rows += jobs.small_rows(small, small_jobs)
        raw["jobs"] = small.to_json()
        seconds["jobs"] = round(time.monotonic() - t)
    if "noop" in sections:
        t = time.monotonic()
        cells = jobs.run_noop(work, creds, cfg.projects, cfg.templates, cfg.runs, cfg.warmup, log)
        rows += jobs.noop_rows(cells, small_jobs)
        raw["noop"] = cells.to_json()
        seconds["noop"] = round(time.monotonic() - t)
    if "scale" in sections:
        t = time.monotonic()
        big = jobs.run_scale(work, creds, cfg.scale_projects, cfg.templates, cfg.scale_runs, log)
        rows += jobs.scale_rows(big, small, cfg.scale_projects * cfg.templates, small_jobs)
        raw["scale"] = big.to_json()
        seconds["scale"] = round(time.monotonic() - t)
    if "wait" in sections:
        t = time.monotonic()
        data = waitlat.run(work, creds, cfg.wait_samples, 1 if cfg.warmup else 0, log, cfg.wait_low, cfg.wait_high)
        rows += waitlat.rows(data)
        raw["wait"] = data
        seconds["wait"] = round(time.monotonic() - t)
    if "restart" in sections:
        t = time.monotonic()
        data = restart.run(work, creds, cfg.projects, cfg.templates, cfg.restart_runs, log)
        rows += restart.rows(data, small_jobs)
        raw["restart"] = data
        seconds["restart"] = round(time.monotonic() - t)
    if "targets" in sections:
        t = time.monotonic()
        data = multi.run(work, creds, cfg.projects, cfg.templates, cfg.targets_runs, cfg.warmup, log)
        rows += multi.rows(data, small_jobs)
        raw["targets"] = data
        seconds["targets"] = round(time.monotonic() - t)
    if "nested" in sections:
        why = nested.available()
        if why:
            log(f"skipping scenarios 6 and 7: {why}")
            raw["nested"] = {"skipped": why}
        else:
            t = time.monotonic()
            wrapper = nested.BenchWrapper(work, log)
            try:
                log(f"starting wrapper {wrapper.name}")
                wrapper.up()
                drivers = nested.storage_drivers(wrapper)
                built = nested.build_overhead(work, wrapper, cfg.build_runs, cfg.warmup, cfg.build_files, log)
                started = nested.start_times(wrapper, cfg.start_runs, cfg.warmup, log)
            finally:
                wrapper.down()
            rows += nested.build_rows(built, drivers) + nested.start_rows(started)
            raw["nested"] = {"drivers": drivers, "build": built, "start": started}
            seconds["nested"] = round(time.monotonic() - t)
    return {"rows": rows, "raw": raw, "config": asdict(cfg), "section_seconds": seconds}


def targets(rows: list[dict]) -> list[str]:
    """One line per target of issues 9 and 17: met or missed, by how much."""
    lines = []

    def find(prefix: str, measure: str, suffix: str = "") -> dict | None:
        return next((r for r in rows if r["scenario"].startswith(prefix) and r["scenario"].endswith(suffix)
                     and r["measure"] == measure), None)

    checks = [
        ("cold push <= 0.5x JJB --workers 4", find("1 cold push", "wall time", "--workers 4"), "ratio", 0.5),
        ("no-op <= 0.5x JJB warm cache", find("2 no-op", "wall time"), "ratio", 0.5),
        ("cold push <= 0.5x JJB, stand-in", find("10 cold", "wall time", "stand-in"), "ratio", 0.5),
        ("no-op <= 0.5x JJB, stand-in", find("10 no-op", "wall time", "stand-in"), "ratio", 0.5),
        ("cold push <= 0.5x JJB, slower double", find("10 cold", "wall time", "ms"), "ratio", 0.5),
        ("no-op <= 0.5x JJB, slower double", find("10 no-op", "wall time", "ms"), "ratio", 0.5),
        ("5 000-job peak RSS <= 1.0x JJB (cold)", find("4 cold", "peak RSS"), "ratio", 1.0),
        ("5 000-job peak RSS <= 1.0x JJB (no-op)", find("4 no-op", "peak RSS"), "ratio", 1.0),
        ("wait latency median <= 0.25 s", find("5 wait", "ready -> wait returns"), "ours", 0.25),
        ("nested/host build <= 1.10", find("6 nested", "build --no-cache"), "ratio", 1.10),
    ]
    later = [  # after the no-op note, so the lines of issue 9 keep their places
        ("3 targets cold <= 1.5x one target, stand-in", find("9 cold", "wall time", "stand-in"), "ratio", 1.5),
        ("3 targets no-op <= 1.3x one target, stand-in", find("9 no-op", "wall time", "stand-in"), "ratio", 1.3),
        ("3 targets cold <= 1.5x one target, slower double", find("9 cold", "wall time", "ms"), "ratio", 1.5),
        ("3 targets no-op <= 1.3x one target, slower double", find("9 no-op", "wall time", "ms"), "ratio", 1.3),
    ]
    lines += _verdicts(checks)
    noop = find("2 no-op", "requests")
    if noop and noop.get("note"):
        lines.append(f"no-op sends only reads: {noop['note']}")
    return lines + _verdicts(later)


def _verdicts(checks: list) -> list[str]:
    lines = []
    for label, found, key, limit in checks:
        r = found
        if not r or not r.get(key):
            lines.append(f"{label}: not measured")
            continue
        value = r[key]["median"]
        verdict = "met" if value <= limit else f"MISSED by {value / limit - 1:.0%}"
        lines.append(f"{label}: {value:.2f} ({verdict})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small trees, few runs: under 2 minutes")
    parser.add_argument("--no-docker", action="store_true", help="skip scenarios 6 and 7")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    parser.add_argument("--src", type=Path, help="run dindjobs from this src/ directory instead of a snapshot "
                        "of the last commit (e.g. src to measure uncommitted work)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch directory")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help="measured rounds (pairs) of every scenario instead of the default (5, 3 for targets)")
    args = parser.parse_args(argv)
    sections = tuple(s for s in args.only.split(",") if s)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.no_docker:
        sections = tuple(s for s in sections if s != "nested")
    cfg = QUICK if args.quick else FULL
    if args.rounds:
        cfg = replace(cfg, runs=args.rounds, scale_runs=args.rounds, build_runs=args.rounds, start_runs=args.rounds,
                      restart_runs=args.rounds, targets_runs=args.rounds)
    work = Path(tempfile.mkdtemp(prefix="dindjobs-bench-"))
    start = time.monotonic()
    if args.src:
        tools.SRC, commit = args.src.resolve(), "working tree"
    else:
        commit = tools.snapshot(work / "snapshot")
    log(f"bench: {'quick' if args.quick else 'full'} run of {', '.join(sections)}; dindjobs at {commit}; "
        f"scratch {work}")
    try:
        results = run(cfg, sections, work)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    results.update(commit=commit, quick=args.quick, sections=list(sections), machine=machine(),
                   total_seconds=round(time.monotonic() - start),
                   started=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(time.time() - (time.monotonic() - start))))
    results["targets"] = targets(results["rows"])
    saved = stats.save(results, args.out)
    print(stats.text_table(results["rows"]))
    print()
    for r in results["rows"]:
        if r.get("note"):
            print(f"note: {r['scenario']}, {r['measure']}: {r['note']}")
    print("targets:")
    for line in results["targets"]:
        print(f"  {line}")
    latest = args.out / ("latest-quick.json" if args.quick else "latest.json")
    print(f"total {results['total_seconds']} s; results in {latest} and {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
