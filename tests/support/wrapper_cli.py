"""Driving the `dindjobs` CLI against a test engine, for the backup and doctor end-to-end tests.

``Cli(engine, state_dir)`` runs ``python -m dindjobs`` with ``DOCKER_HOST`` set to the test
engine and a private state directory (so generated admin passwords stay in the test's tmp
dir). ``cleanup(client, name)`` removes every container and volume a test made under ``name``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import docker.errors


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Cli:
    """``dindjobs`` as a user runs it, one process per call."""

    def __init__(self, docker_host: str, state_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DINDJOBS_", "JJB_"))}
        self.env.update(DOCKER_HOST=docker_host, DINDJOBS_STATE_DIR=str(state_dir))

    def run(self, *args: object, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dindjobs", *map(str, args)], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: object, timeout: float = 600) -> subprocess.CompletedProcess:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"dindjobs {' '.join(map(str, args))} -> {done.returncode}\n{done.stderr[-4000:]}"
        return done

    def json(self, *args: object, timeout: float = 600) -> dict:
        return json.loads(self.ok(*args, "--json", timeout=timeout).stdout)


def cleanup(client, name: str) -> None:
    """Remove containers ``name`` and ``name-restore`` and both volumes of wrapper ``name``."""
    for container in (name, f"{name}-restore"):
        try:
            client.containers.get(container).remove(force=True)
        except docker.errors.NotFound:
            pass
    for volume in (f"{name}-jenkins-home", f"{name}-docker-data"):
        try:
            client.volumes.get(volume).remove(force=True)
        except docker.errors.NotFound:
            pass
