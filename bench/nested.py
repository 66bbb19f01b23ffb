"""Scenarios 6 and 7: builds in the wrapper's nested daemon against the host daemon, and how
fast a wrapper (re)starts. Needs the Docker engine and ``dindjobs-wrapper:latest``.

Everything is driven through the tools a user has: ``dindjobs up/down`` for the wrapper (unique
name, its own state directory, volumes removed at the end) and the ``docker`` CLI for builds,
``docker start`` and ``docker kill``. Both daemons build with the classic builder
(``DOCKER_BUILDKIT=0``: the nested CLI has no buildx) and host networking, from the same base
image (``docker save`` on the host, ``docker load`` in the nested daemon; nothing is pulled).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench import stats
from bench.tools import dindjobs_argv, dindjobs_env

BASE_IMAGE = "dindjobs-offline-base:trixie"
WRAPPER_IMAGE = "dindjobs-wrapper:latest"

DOCKERFILE = """\
FROM {base}
USER root
# A few thousand small files, written then archived: many small layer writes.
RUN mkdir -p /data && cd /data && i=0 && while [ $i -lt {files} ]; do \\
      echo "file $i of the nested-build benchmark" > "f$i.txt"; i=$((i + 1)); done
RUN tar -czf /data.tgz -C /data . && ls -l /data.tgz
# And a copy of /usr: large sequential copies through the storage driver.
RUN cp -a /usr /usr-copy && du -sh /usr-copy
"""


def docker(*args: str, check: bool = True, input_bytes: bytes | None = None, timeout: float = 600,
           env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, capture_output=True, input=input_bytes,
                          timeout=timeout, env=env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchWrapper:
    """A wrapper started with ``dindjobs up`` under a unique name, removed with ``down --volumes``."""

    def __init__(self, work: Path, log: Callable[[str], None]) -> None:
        self.name = f"djbench-{secrets.token_hex(4)}"
        self.state = work / "wrapper-state"
        self.port = _free_port()
        self.log = log
        self.env = dindjobs_env(DINDJOBS_STATE_DIR=str(self.state))
        self.container = self.name
        self.url = f"http://127.0.0.1:{self.port}/"

    def dindjobs(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(dindjobs_argv("--name", self.name, *args), capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def up(self) -> None:
        done = self.dindjobs("up", "--port", str(self.port), "--json", "--wait", "180")
        if done.returncode != 0:
            raise RuntimeError(f"dindjobs up failed: {done.stderr.strip().splitlines()[-1:]}")
        info = json.loads(done.stdout)
        self.container = info.get("name") or self.name
        self.url = info.get("url") or self.url

    def down(self) -> None:
        done = self.dindjobs("down", "--volumes", "--yes")
        if done.returncode != 0:
            self.log(f"  warning: dindjobs down failed: {done.stderr.strip()}")
        shutil.rmtree(self.state, ignore_errors=True)

    def exec(self, *args: str, check: bool = True, input_bytes: bytes | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
        prefix = ["exec", "-i"] if input_bytes is not None else ["exec"]
        return docker(*prefix, "-e", "DOCKER_BUILDKIT=0", self.container, *args, check=check,
                      input_bytes=input_bytes, timeout=timeout)

    def nested_ready(self) -> bool:
        return self.exec("docker", "version", "--format", "{{.Server.Version}}", check=False, timeout=30).returncode == 0

    def jenkins_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "login", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False


def storage_drivers(wrapper: BenchWrapper) -> dict:
    host = docker("info", "--format", "{{.Driver}}").stdout.decode().strip()
    nested = wrapper.exec("docker", "info", "--format", "{{.Driver}}").stdout.decode().strip()
    return {"host": host, "nested": nested}


def _timed_build(argv_prefix: list[str], context: str, tag: str, env: dict | None) -> float:
    start = time.monotonic()
    done = subprocess.run([*argv_prefix, "build", "--no-cache", "--network", "host", "-q", "-t", tag, context],
                          capture_output=True, env=env, timeout=900)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"build failed: {done.stderr.decode(errors='replace')[-800:]}")
    return seconds


def build_overhead(work: Path, wrapper: BenchWrapper, runs: int, warmup: int, files: int,
                   log: Callable[[str], None]) -> dict:
    """The same Dockerfile built ``--no-cache`` on the host and in the nested daemon, alternating."""
    context = work / "build-context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=BASE_IMAGE, files=files), encoding="utf-8")
    log(f"  loading {BASE_IMAGE} into the nested daemon")
    saved = docker("save", BASE_IMAGE).stdout
    wrapper.exec("docker", "load", input_bytes=saved)
    docker("cp", str(context), f"{wrapper.container}:/tmp/bench-context")
    tag = f"{wrapper.name}-build:bench"
    host_env = dict(os.environ, DOCKER_BUILDKIT="0")
    host, nested = [], []
    try:
        for i in range(warmup + runs):
            order = ("host", "nested") if i % 2 == 0 else ("nested", "host")
            for side in order:
                if side == "host":
                    seconds = _timed_build(["docker"], str(context), tag, host_env)
                    docker("rmi", "-f", tag, check=False)
                else:
                    seconds = _timed_build(["docker", "exec", "-e", "DOCKER_BUILDKIT=0", wrapper.container, "docker"],
                                           "/tmp/bench-context", tag, None)
                    wrapper.exec("docker", "rmi", "-f", tag, check=False)
                log(f"  build {i + 1}/{warmup + runs} {side:6} {seconds:6.2f} s{' (warm-up)' if i < warmup else ''}")
                if i >= warmup:
                    (host if side == "host" else nested).append(seconds)
    finally:
        docker("rmi", "-f", tag, check=False)
    return {"host": host, "nested": nested, "files": files}


def _poll(check: Callable[[], bool], start: float, deadline: float, out: dict, key: str) -> None:
    while time.monotonic() < deadline:
        if check():
            out[key] = time.monotonic() - start
            return
        time.sleep(0.05)


def start_times(wrapper: BenchWrapper, runs: int, warmup: int, log: Callable[[str], None]) -> dict:
    """``docker start`` to nested-daemon-ready and to Jenkins-ready, after ``docker stop`` and
    after ``docker kill`` (alternating), measured from just before ``docker start``."""
    results = {"stop": {"daemon": [], "jenkins": []}, "kill": {"daemon": [], "jenkins": []}}
    for i in range(warmup + runs):
        for how in ("stop", "kill"):
            docker(how, wrapper.container, timeout=120)
            docker("wait", wrapper.container, check=False, timeout=120)
            times: dict = {}
            start = time.monotonic()
            docker("start", wrapper.container, timeout=120)
            deadline = start + 180
            pollers = [threading.Thread(target=_poll, args=(wrapper.nested_ready, start, deadline, times, "daemon")),
                       threading.Thread(target=_poll, args=(wrapper.jenkins_ready, start, deadline, times, "jenkins"))]
            for t in pollers:
                t.start()
            for t in pollers:
                t.join()
            if "daemon" not in times or "jenkins" not in times:
                raise RuntimeError(f"wrapper not ready 180 s after docker start (after docker {how}): {times}")
            log(f"  start {i + 1}/{warmup + runs} after {how:4}: daemon {times['daemon']:.2f} s, "
                f"Jenkins {times['jenkins']:.2f} s{' (warm-up)' if i < warmup else ''}")
            if i >= warmup:
                results[how]["daemon"].append(times["daemon"])
                results[how]["jenkins"].append(times["jenkins"])
    return results


def build_rows(data: dict, drivers: dict) -> list[dict]:
    scen = f"6 nested build ({data['files']} files, /usr copy)"
    note = f"storage driver: nested {drivers['nested']}, host {drivers['host']}"
    return [stats.row(scen, "build --no-cache", stats.summary(data["nested"], "s"), stats.summary(data["host"], "s"),
                      stats.ratio_summary(data["nested"], data["host"]), "<= 1.15x", note=note)]


def start_rows(data: dict) -> list[dict]:
    rows = []
    for how in ("stop", "kill"):
        scen = f"7 docker start after docker {how}"
        rows += [stats.row(scen, "to nested daemon ready", stats.summary(data[how]["daemon"], "s")),
                 stats.row(scen, "to Jenkins ready", stats.summary(data[how]["jenkins"], "s"))]
    return rows


def available() -> str | None:
    """Why the Docker scenarios cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if docker("info", check=False, timeout=30).returncode != 0:
        return "no Docker engine answers"
    for image in (WRAPPER_IMAGE, BASE_IMAGE):
        if docker("image", "inspect", image, check=False, timeout=30).returncode != 0:
            return f"image {image} missing (make image OFFLINE=1)"
    return None
