"""A Docker engine for tests: a reachable one, or a private dockerd started for the run.

Order: ``DOCKER_HOST`` if set and answering; else the default socket if it answers; else, as
root with ``dockerd`` installed, a private daemon with its own data-root, exec-root, pidfile
and socket under a temporary directory, on ``--bridge=none --iptables=false`` so it never
touches the host's network configuration. Only that private daemon is stopped at the end.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SOCKET = "/var/run/docker.sock"


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def ping(docker_host: str, timeout: float = 2.0) -> bool:
    """True when the engine at ``docker_host`` (unix:// or tcp://) answers ``/_ping`` with OK."""
    try:
        if docker_host.startswith("unix://"):
            conn: http.client.HTTPConnection = _UnixHTTPConnection(docker_host[len("unix://"):], timeout)
        elif docker_host.startswith(("tcp://", "http://")):
            hostport = docker_host.split("://", 1)[1].rstrip("/")
            conn = http.client.HTTPConnection(hostport, timeout=timeout)
        else:
            return False
        conn.request("GET", "/_ping")
        response = conn.getresponse()
        ok = response.status == 200 and response.read().strip() == b"OK"
        conn.close()
        return ok
    except OSError:
        return False


@dataclass
class Engine:
    """A Docker engine the tests may use."""

    docker_host: str
    private: bool
    workdir: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "dockerd.log" if self.workdir else None

    def stop(self) -> None:
        """Stop the private daemon (and only it, by its pid); a shared engine is left alone."""
        if not self.private or self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.workdir:
            # dockerd can leave mounts behind (its default netns under the exec-root, overlay
            # layers under the data-root); unmount the deepest first, then remove the tree.
            prefix = f"{self.workdir}/"
            with open("/proc/self/mounts", encoding="utf-8") as mounts:
                points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
            for point in sorted(points, key=len, reverse=True):
                subprocess.run(["umount", "-l", point], capture_output=True)
            shutil.rmtree(self.workdir, ignore_errors=True)


def find_engine() -> Engine | None:
    """An engine that already answers, or None."""
    env_host = os.environ.get("DOCKER_HOST")
    if env_host:
        return Engine(env_host, private=False) if ping(env_host) else None
    default = f"unix://{DEFAULT_SOCKET}"
    if ping(default):
        return Engine(default, private=False)
    return None


def start_private_engine(ready_timeout: float = 60.0) -> Engine:
    """Start a private dockerd for this run; raises RuntimeError saying why it could not."""
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise RuntimeError("dockerd is not installed (on Debian: apt-get install docker.io)")
    if os.geteuid() != 0:
        raise RuntimeError("a private dockerd needs root")
    # Short paths: containerd's sockets live under the exec-root and unix paths max out at 108.
    workdir = Path(tempfile.mkdtemp(prefix="djt-", dir="/tmp"))
    sock = workdir / "d.sock"
    log = (workdir / "dockerd.log").open("wb")
    process = subprocess.Popen(
        [
            dockerd,
            f"--data-root={workdir / 'data'}",
            f"--exec-root={workdir / 'x'}",
            f"--pidfile={workdir / 'dockerd.pid'}",
            f"--host=unix://{sock}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    engine = Engine(f"unix://{sock}", private=True, workdir=workdir, process=process)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (workdir / "dockerd.log").read_text(errors="replace")[-2000:]
            engine.stop()
            raise RuntimeError(f"private dockerd exited with {process.returncode}: {tail}")
        if ping(engine.docker_host, timeout=1.0):
            return engine
        time.sleep(0.2)
    engine.stop()
    raise RuntimeError(f"private dockerd did not answer within {ready_timeout:.0f}s")
