"""One sync per Jenkins at a time: an advisory lock file per instance in the state directory.

``<state_dir>/locks/<key>.lock`` is locked with ``flock``; the kernel drops the lock when its
holder exits, however it exits, so the lock of a dead process is simply taken over. The file
holds the holder's pid and start time, for the "waiting for ..." message and the error.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from dindjobs.config import canonical_url
from dindjobs.errors import DindjobsError

DEFAULT_LOCK_TIMEOUT = 60.0
POLL = 0.1


def lock_path(state_dir: Path, url: str) -> Path:
    """The lock file of the Jenkins at ``url`` (every spelling of one URL shares it)."""
    key = hashlib.sha256(canonical_url(url).encode()).hexdigest()[:24]
    return Path(state_dir) / "locks" / f"{key}.lock"


class LockTimeout(DindjobsError):
    """Another sync held the lock for longer than we would wait."""


class SyncLock:
    """The write lock of one Jenkins; use as a context manager after :meth:`acquire`."""

    def __init__(self, state_dir: Path, url: str) -> None:
        self.path = lock_path(state_dir, url)
        self.url = url
        self._fd: int | None = None

    def acquire(self, timeout: float = DEFAULT_LOCK_TIMEOUT, *, on_wait: Callable[[str], None] | None = None,
                stop: threading.Event | None = None) -> SyncLock:
        """Take the lock, waiting up to ``timeout`` seconds; ``on_wait`` is told once who holds it.

        Raises :class:`LockTimeout` naming the holder, or ``InterruptedError`` once ``stop`` is set.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                holder = self.holder()
                known = holder.startswith("pid ") or time.monotonic() > deadline - timeout + 1
                if not told and known and on_wait is not None:
                    on_wait(f"waiting for the sync started by {holder} (up to {timeout:g} s, --lock-timeout)")
                    told = True
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"another sync of {self.url} is running (started by {holder}); "
                                      f"gave up after {timeout:g} s",
                                      hint="wait for it to finish, or pass a longer --lock-timeout")
                if stop is not None and stop.wait(POLL):
                    raise InterruptedError("stopped while waiting for the sync lock")
                if stop is None:
                    time.sleep(POLL)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": time.time(), "url": self.url}).encode(), 0)
        self._fd = fd
        return self

    def holder(self) -> str:
        """"pid N at T" of the current holder, as far as its file says."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "{}")
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(data["started"])))
            return f"pid {int(data['pid'])} at {started}"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process (its details are not written yet)"

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race with a waiter)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SyncLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
