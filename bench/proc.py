"""Run one client command and measure it: wall time, peak RSS and CPU of that process alone.

``os.wait4`` gives the resource usage of exactly the child we waited for (unlike
``RUSAGE_CHILDREN``, which is the maximum over every child so far), so the client's memory is
measured apart from the stand-in's, which runs in another process. One floor remains: the kernel
folds the high-water mark of the memory a child had before its ``exec`` (the parent's, shared
by the fork) into the child's ``ru_maxrss``, so the measuring process must stay smaller than
what it measures. ``python -m bench`` is (about 30 MiB against 150 MiB and more for the clients).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    """One finished command."""

    argv: tuple[str, ...]
    returncode: int
    seconds: float  # wall time, monotonic clock
    peak_rss_mib: float
    cpu_seconds: float  # user + system
    stdout: str
    stderr: str

    def check(self, ok: Sequence[int] = (0,)) -> Run:
        """Raise with the tail of stderr unless the exit code is in ``ok``."""
        if self.returncode not in ok:
            tail = "\n".join(self.stderr.splitlines()[-15:])
            raise RuntimeError(f"{' '.join(self.argv[:3])} ... exited {self.returncode}:\n{tail}")
        return self


class _Timer:
    def __init__(self, pid: int, timeout: float | None) -> None:
        self.fired = False
        self._timer = None
        if timeout:
            self._timer = threading.Timer(timeout, self._kill, args=(pid,))
            self._timer.daemon = True
            self._timer.start()

    def _kill(self, pid: int) -> None:
        self.fired = True
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def measure(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float | None = 600, log_dir: Path | None = None) -> Run:
    """Run ``argv`` to completion; stdout and stderr go to files (no pipe can stall the child)."""
    log_dir = Path(log_dir or os.environ.get("TMPDIR", "/tmp"))
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path = log_dir / f"run-{os.getpid()}-{time.monotonic_ns()}.out"
    err_path = out_path.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen(list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=dict(env) if env is not None else None, cwd=cwd)
        timer = _Timer(proc.pid, timeout)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it, Popen must not
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    stderr = err_path.read_text(encoding="utf-8", errors="replace")
    out_path.unlink()
    err_path.unlink()
    if timer.fired:
        stderr += f"\n(bench: killed after {timeout} s)"
    return Run(tuple(argv), proc.returncode, seconds, usage.ru_maxrss / 1024.0,
               usage.ru_utime + usage.ru_stime, stdout, stderr)


def combine(runs: Sequence[Run]) -> Run:
    """Several commands run one after the other, as one: times added, the highest peak RSS."""
    return Run(tuple(a for r in runs for a in (*r.argv, "&&"))[:-1], max(r.returncode for r in runs),
               sum(r.seconds for r in runs), max(r.peak_rss_mib for r in runs),
               sum(r.cpu_seconds for r in runs), "".join(r.stdout for r in runs), "".join(r.stderr for r in runs))


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` (all their threads) and of their children that ended
    and were waited for, from /proc, in seconds: for processes this one did not start and wait
    for (a daemon, a server). The children matter: Docker 20.10 unpacks layers in a re-executed
    child (``docker-untar``), Docker 26.1 in a thread of dockerd itself."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime (fields 14-17)
    return ticks / os.sysconf("SC_CLK_TCK")
