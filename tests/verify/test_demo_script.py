"""`make demo` without a Docker engine: it says exactly that, and how to start one (no Docker needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.net import free_port

REPO = Path(__file__).resolve().parents[2]




@pytest.mark.parametrize("docker_host", ["unix:///tmp/dindjobs-no-such-engine.sock", "tcp://127.0.0.1:{port}"])
def test_demo_without_an_engine_says_so_and_how_to_start_one(tmp_path, docker_host):
    docker_host = docker_host.format(port=free_port())
    env = {**os.environ, "DOCKER_HOST": docker_host, "DEMO_LOG_DIR": str(tmp_path / "logs")}
    done = subprocess.run(["make", "-s", "demo"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stdout.splitlines()
    assert lines[0] == f"make demo: no Docker engine answers at {docker_host}."
    assert "apt-get install docker.io" in lines[1] and "dockerd" in lines[1]
    assert not (tmp_path / "logs").exists()  # it stopped before doing anything
