"""Scenario 8: Jenkins restarts during a cold `dindjobs sync`.

Each round pushes the same tree twice, each time to a fresh stand-in process: once undisturbed
and once with a restart started when a third of the writes are done (``RESTART_DELAY`` s of 503
"restarting", ``RESTART_DOWN`` s with the port closed, then a boot). The figure is the extra
wall time of the disturbed run over the undisturbed one, next to the restart's own duration
(from the restart to ready again): sync should lose little more than the restart itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import stats
from bench.gen import generate
from bench.proc import measure
from bench.tools import Credentials, Dindjobs, StandinProc

RESTART_DELAY = 1.0
RESTART_DOWN = 1.0
RESTART_AT = 1 / 3  # share of the writes done when the restart starts


class _Trigger(threading.Thread):
    """Restarts the stand-in once it has answered ``after`` writes."""

    def __init__(self, standin: StandinProc, after: int) -> None:
        super().__init__(daemon=True)
        self.standin = standin
        self.after = after
        self.seconds: float | None = None
        self.finished = threading.Event()

    def run(self) -> None:
        while not self.finished.is_set():
            if self.standin.counts()["writes"] >= self.after:
                self.standin.restart(RESTART_DELAY, RESTART_DOWN)
                self.seconds = self.standin.restarted()
                return
            time.sleep(0.01)


def run(work: Path, creds: Credentials, projects: int, templates: int, runs: int,
        log: Callable[[str], None]) -> dict:
    """``runs`` rounds of (undisturbed, disturbed) cold syncs; the raw samples."""
    tree = generate(work / "yaml-restart", projects=projects, templates=templates)
    data: dict[str, list] = {"undisturbed": [], "disturbed": [], "restart": [], "exit_codes": []}
    client = Dindjobs(work / "dj-restart", creds, 4)
    for r in range(runs):
        log(f"restart round {r + 1}/{runs}: {tree.items} items")
        order = (False, True) if r % 2 == 0 else (True, False)
        for disturbed in order:
            client.cold()
            standin = StandinProc(work / f"home-restart-{r}-{int(disturbed)}", creds)
            trigger = _Trigger(standin, int(tree.items * RESTART_AT)) if disturbed else None
            try:
                standin.reset()
                if trigger is not None:
                    trigger.start()
                done = measure(client.argv(standin, "sync", "--yes", "--workers", "4", str(tree.path)),
                               env=client.env(), timeout=900, log_dir=client.workdir)
                if trigger is not None:
                    trigger.finished.set()
                    trigger.join(600)
            finally:
                standin.stop()
            data["exit_codes"].append(done.returncode)
            if disturbed:
                data["disturbed"].append(done.seconds)
                data["restart"].append(trigger.seconds)
            else:
                data["undisturbed"].append(done.seconds)
            log(f"  {'with restart' if disturbed else 'undisturbed':13} {done.seconds:7.2f} s  exit {done.returncode}"
                + (f"  (restart took {trigger.seconds:.2f} s)" if disturbed and trigger.seconds else ""))
    return data


def rows(data: dict, items: int) -> list[dict]:
    """Table rows: the extra wall time and the restart's duration."""
    pairs = [(d, u, s) for d, u, s in zip(data["disturbed"], data["undisturbed"], data["restart"], strict=True)
             if s is not None]
    if not pairs:
        return [stats.row(f"8 restart during cold sync {items}", "extra wall time", None,
                          note="the sync ended before the restart started")]
    extra = [d - u for d, u, _ in pairs]
    restart = [s for _, _, s in pairs]
    failed = sum(code != 0 for code in data["exit_codes"])
    scen = f"8 restart during cold sync {items}"
    return [
        stats.row(scen, "extra wall time", stats.summary(extra, "s"), target="~ restart duration",
                  note=f"restart: {RESTART_DELAY:g} s of 503, {RESTART_DOWN:g} s refused, then a boot; "
                       f"{failed} of {len(data['exit_codes'])} runs did not exit 0"),
        stats.row(scen, "restart duration", stats.summary(restart, "s")),
        stats.row(scen, "extra / restart", stats.summary([e / s for e, s in zip(extra, restart, strict=True)], "x"),
                  target="~ 1.0x"),
    ]
