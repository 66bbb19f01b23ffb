"""Scenario 9: one job tree to three Jenkins at once (`sync --all-targets`) against one target.

Each round pushes the same tree cold to one fresh stand-in process (one target) and to three
fresh ones (three targets, one `dindjobs sync --all-targets`), in alternating order, then runs
the no-op of each. The three-target run renders once and plans and applies the targets in
parallel: the figure is its wall time over the one-target run's.

Every round is run against two kinds of server: the stand-in, whose three processes share this
machine's cores with the client (three servers' CPU where a real setup has one per host), and
the slower double (20 ms added to each request, waited, not computed), which models a Jenkins
whose time per request is spent on its own machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from bench import stats
from bench.gen import generate
from bench.jobs import SLOW_DELAY, servers
from bench.proc import Run, measure
from bench.tools import ADMIN, Credentials, Dindjobs, StandinProc, dindjobs_argv

TARGETS = ("jenkins", "second", "third")


def _ini(path: Path, standins: list[StandinProc], creds: Credentials) -> Path:
    text = "".join(f"[{name}]\nurl={s.url}\nuser={ADMIN}\ntoken_file={creds.token_file}\n\n"
                   for name, s in zip(TARGETS, standins, strict=False))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def _sync(client: Dindjobs, ini: Path, tree: Path) -> Run:
    argv = dindjobs_argv("--conf", str(ini), "sync", "--all-targets", "--yes", "--workers", str(client.workers),
                         str(tree))
    return measure(argv, env=client.env(), timeout=900, log_dir=client.workdir).check()


def run(work: Path, creds: Credentials, projects: int, templates: int, runs: int, warmup: int,
        log: Callable[[str], None], delay: float = SLOW_DELAY) -> dict:
    """``runs`` rounds of cold push and no-op, one target and three, on each kind of server;
    the raw seconds by server."""
    tree = generate(work / "yaml-targets", projects=projects, templates=templates)
    kinds = servers(delay)
    data: dict[str, dict[str, list[float]]] = {
        server: {"cold 1": [], "cold 3": [], "no-op 1": [], "no-op 3": []} for server in kinds}
    clients = {1: Dindjobs(work / "dj-targets-1", creds, 4), 3: Dindjobs(work / "dj-targets-3", creds, 4)}
    for r in range(warmup + runs):
        keep = r >= warmup
        for server, request_delay in kinds.items():
            log(f"targets round {r + 1}/{warmup + runs}{'' if keep else ' (warm-up)'}: {server}, "
                f"{tree.items} items per target")
            order = (1, 3) if r % 2 == 0 else (3, 1)
            standins: dict[int, list[StandinProc]] = {}
            try:
                for count in order:
                    clients[count].cold()
                    standins[count] = [StandinProc(work / f"home-targets-{count}-{i}", creds,
                                                   request_delay=request_delay) for i in range(count)]
                inis = {count: _ini(clients[count].workdir / "targets.ini", standins[count], creds) for count in order}
                for scenario in ("cold", "no-op"):
                    for count in order:
                        done = _sync(clients[count], inis[count], tree.path)
                        log(f"  {scenario:6} {count} target(s) {done.seconds:7.2f} s  {done.peak_rss_mib:5.0f} MiB")
                        if keep:
                            data[server][f"{scenario} {count}"].append(done.seconds)
            finally:
                for group in standins.values():
                    for standin in group:
                        standin.stop()
    return data


def rows(data: dict, items: int) -> list[dict]:
    """Table rows per server: three targets (ours) next to one target (theirs)."""
    out = []
    for server, cells in data.items():
        for scenario, limit in (("cold", "<= 1.50x"), ("no-op", "<= 1.30x")):
            three, one = cells[f"{scenario} 3"], cells[f"{scenario} 1"]
            if not three or not one:
                continue
            out.append(stats.row(f"9 {scenario} 3 targets x {items}, {server}", "wall time", stats.summary(three, "s"),
                                 stats.summary(one, "s"), stats.ratio_summary(three, one), limit,
                                 note="theirs = the same sync against one target"))
    return out
