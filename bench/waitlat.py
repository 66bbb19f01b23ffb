"""Scenario 5: how long after the stand-in becomes ready does `dindjobs wait` return?

The stand-in process loads for a random time (uniform between ``low`` and ``high`` seconds,
drawn from a seeded generator so a rerun draws the same moments), and tells the driver the epoch
time it switched to ready. `dindjobs wait` is started as soon as the port listens; its return is
the moment its "ready:" line reaches us (the process exit comes later, after interpreter
teardown, and is reported separately).
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench import stats
from bench.tools import ADMIN, Credentials, StandinProc, dindjobs_argv, dindjobs_env


def measure_once(work: Path, creds: Credentials, delay: float) -> tuple[float, float]:
    """(ready -> "ready:" line, ready -> exit) in seconds, for one stand-in start."""
    standin = StandinProc(work / "home-wait", creds, startup_delay=delay, wait=False)
    try:
        env = dindjobs_env(DINDJOBS_TOKEN_FILE=str(creds.token_file), DINDJOBS_STATE_DIR=str(work / "wait-state"))
        proc = subprocess.Popen(dindjobs_argv("--url", standin.url, "--user", ADMIN, "wait", "--no-wrapper",
                                              "--timeout", "60"),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                text=True, env=env)
        line = proc.stdout.readline()
        returned = time.time()
        proc.stdout.read()
        code = proc.wait(timeout=60)
        exited = time.time()
        if code != 0 or not line.startswith("ready:"):
            raise RuntimeError(f"dindjobs wait exited {code}: {line!r}")
        ready = standin.wait_ready(5)
        return returned - ready, exited - ready
    finally:
        standin.stop()


def run(work: Path, creds: Credentials, samples: int, warmup: int, log: Callable[[str], None],
        low: float = 1.0, high: float = 3.0, seed: int = 9) -> dict:
    """``samples`` measured starts after ``warmup`` discarded ones."""
    rng = random.Random(seed)
    latencies, exits, delays = [], [], []
    for i in range(warmup + samples):
        delay = rng.uniform(low, high)
        latency, exit_latency = measure_once(work, creds, delay)
        log(f"  wait {i + 1}/{warmup + samples}: ready after {delay:.2f} s, wait returned {latency * 1000:.0f} ms "
            f"later (process exit {exit_latency * 1000:.0f} ms){' (warm-up)' if i < warmup else ''}")
        if i >= warmup:
            latencies.append(latency)
            exits.append(exit_latency)
            delays.append(delay)
    return {"latency": latencies, "exit": exits, "delays": delays}


def rows(data: dict) -> list[dict]:
    n = len(data["latency"])
    return [
        stats.row(f"5 wait latency ({n} starts)", "ready -> wait returns", stats.summary(data["latency"], "s"),
                  None, None, "median <= 0.25 s"),
        stats.row(f"5 wait latency ({n} starts)", "ready -> process exit", stats.summary(data["exit"], "s")),
    ]
