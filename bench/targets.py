"""Scenario 9: one job tree to three Jenkins at once (`sync --all-targets`) against one target.

Each round pushes the same tree cold to one fresh stand-in process (one target) and to three
fresh ones (three targets, one `dindjobs sync --all-targets`), in alternating order, then runs
the no-op of each. The three-target run renders once and plans and applies the targets in
parallel: the figure is its wall time over the one-target run's.

Every round is run against two kinds of server: the stand-in, whose three processes share this
machine's cores with the client (three servers' CPU where a real setup has one per host), and
the slower double (20 ms added to each request, waited, not computed), which models a Jenkins
whose time per request is spent on its own machine.

Where the time goes is measured with it: the CPU of the client (every process of the sync) and
of the servers, and from them the floor no schedule beats on this machine's cores: the part of
the three-target run before its targets start (start-up and render, one process: its wall time
as printed by ``--timings``, all of it taken as CPU on one core, which can only lower the
floor), then the rest of the CPU of client and servers spread over every core. Against the one-target wall time, it says how much of a
missed target is this machine's cores rather than the sync.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from bench import stats
from bench.gen import generate
from bench.jobs import SLOW_DELAY, servers
from bench.proc import Run, cpu_seconds, measure
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
    argv = dindjobs_argv("--conf", str(ini), "sync", "--all-targets", "--yes", "--timings",
                         "--workers", str(client.workers), str(tree))
    return measure(argv, env=client.env(), timeout=900, log_dir=client.workdir).check()


def run(work: Path, creds: Credentials, projects: int, templates: int, runs: int, warmup: int,
        log: Callable[[str], None], delay: float = SLOW_DELAY) -> dict:
    """``runs`` rounds of cold push and no-op, one target and three, on each kind of server;
    by server, the raw wall seconds (``cold 1``) and CPU seconds of client and servers
    (``cold 1 client cpu``, ``cold 1 servers cpu``)."""
    tree = generate(work / "yaml-targets", projects=projects, templates=templates)
    kinds = servers(delay)
    data: dict[str, dict[str, list[float]]] = {
        server: {f"{scenario} {count}{what}": [] for scenario in ("cold", "no-op") for count in (1, 3)
                 for what in ("", " client cpu", " servers cpu", " serial")} for server in kinds}
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
                        pids = [standin.proc.pid for standin in standins[count]]
                        before = cpu_seconds(pids)
                        done = _sync(clients[count], inis[count], tree.path)
                        served = cpu_seconds(pids) - before
                        log(f"  {scenario:6} {count} target(s) {done.seconds:7.2f} s  {done.peak_rss_mib:5.0f} MiB  "
                            f"CPU client {done.cpu_seconds:5.2f} s, servers {served:5.2f} s")
                        if keep:
                            key = f"{scenario} {count}"
                            data[server][key].append(done.seconds)
                            data[server][f"{key} client cpu"].append(done.cpu_seconds)
                            data[server][f"{key} servers cpu"].append(served)
                            data[server][f"{key} serial"].append(_before_targets(done.stderr))
            finally:
                for group in standins.values():
                    for standin in group:
                        standin.stop()
    return data


def _before_targets(stderr: str) -> float:
    """Seconds from the start of a multi-target sync to its targets' start, from --timings
    (0 for one target, which prints no such line)."""
    for line in stderr.splitlines():
        if line.startswith("dindjobs timings: "):
            return float(json.loads(line.split(": ", 1)[1]).get("targets_started") or 0.0)
    return 0.0


def rows(data: dict, items: int, cores: int | None = None) -> list[dict]:
    """Table rows per server: three targets (ours) next to one target (theirs): wall time, the
    CPU of client and servers, and the wall-time floor on ``cores`` cores (this machine's)."""
    cores = cores or len(os.sched_getaffinity(0))
    out = []
    for server, cells in data.items():
        for scenario, limit in (("cold", "<= 1.50x"), ("no-op", "<= 1.30x")):
            three, one = cells[f"{scenario} 3"], cells[f"{scenario} 1"]
            if not three or not one:
                continue
            name = f"9 {scenario} 3 targets x {items}, {server}"
            out.append(stats.row(name, "wall time", stats.summary(three, "s"), stats.summary(one, "s"),
                                 stats.ratio_summary(three, one), limit, note="theirs = the same sync against one target"))
            cpu = {(count, who): cells.get(f"{scenario} {count} {who} cpu") or [] for count in (1, 3)
                   for who in ("client", "servers")}
            serial = cells.get(f"{scenario} 3 serial") or []
            if not all(len(values) == len(one) for values in [*cpu.values(), serial]):
                continue  # rounds recorded before the CPU was
            for who in ("client", "servers"):
                out.append(stats.row(name, f"{who} CPU", stats.summary(cpu[3, who], "s"), stats.summary(cpu[1, who], "s"),
                                     stats.ratio_summary(cpu[3, who], cpu[1, who])))
            floor = [first + (client + served - first) / cores
                     for first, client, served in zip(serial, cpu[3, "client"], cpu[3, "servers"], strict=True)]
            out.append(stats.row(name, f"floor on {cores} cores", stats.summary(floor, "s"), stats.summary(one, "s"),
                                 stats.ratio_summary(floor, one),
                                 note=f"ours = the three-target run's start-up and render on one core, then the rest of "
                                      f"its CPU (client and servers) over {cores} cores: a wall time no schedule beats "
                                      "here; theirs = one target's wall time"))
    return out
