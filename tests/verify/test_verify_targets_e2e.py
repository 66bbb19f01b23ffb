"""Two real wrappers as targets: wait, sync and verify both at once, each proved against its own
nested daemon (the offline image on this engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from support.dind import build_image
from support.net import free_port

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_JOBS = {"images/build-hello", "images/build-multistage", "images/build-greeting"}


def nested_id(docker_client, name: str) -> str:
    result = docker_client.containers.get(name).exec_run(["docker", "info", "--format", "{{.ID}}"])
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


@pytest.fixture(scope="module")
def wrappers(docker_engine, docker_client, tmp_path_factory):
    """Two running wrappers (by name, no ini) and a function running the CLI against them."""
    build_image(docker_engine.docker_host)
    tmp = tmp_path_factory.mktemp("targets-e2e")
    names = [f"djt-{tag}-{uuid.uuid4().hex[:6]}" for tag in ("a", "b")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINDJOBS_", "JJB_"))}
    env.update(DOCKER_HOST=docker_engine.docker_host, DINDJOBS_STATE_DIR=str(tmp / "state"),
               XDG_CACHE_HOME=str(tmp / "cache"), PYTHONPATH=str(REPO / "src"))

    def dj(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dindjobs", *argv], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
    try:
        for name in names:
            up = dj("up", "--name", name, "--port", str(free_port()))
            assert up.returncode == 0, up.stderr
        yield names, dj
    finally:
        for name in names:
            dj("down", "--name", name, "--volumes", "--yes", timeout=300)


def test_sync_and_verify_prove_nesting_on_each_wrapper_target(wrappers, docker_client):
    (a, b), dj = wrappers
    targets = ["--target", a, "--target", b]
    waited = dj("wait", *targets, "--timeout", "240")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert all(f"{name}: ready: " in waited.stdout for name in (a, b)), waited.stdout

    synced = dj("sync", "jjb/", *targets, "--yes")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert f"{a}: Applied" in synced.stdout and f"{b}: Applied" in synced.stdout
    plan = dj("sync", "--plan", "jjb/", *targets)
    assert plan.returncode == 0, plan.stdout + plan.stderr

    done = dj("verify", "jjb/", *targets, "--json", "--quiet")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(done.stdout)
    assert data["exit_code"] == 0 and set(data["targets"]) == {a, b}
    host = docker_client.info()["ID"]
    ids = {}
    for name in (a, b):
        report = data["targets"][name]
        ids[name] = nested_id(docker_client, name)
        assert report["nested_daemon_id"] == ids[name] != host
        assert {j["job"] for j in report["jobs"]} == EXAMPLE_JOBS
        for job in report["jobs"]:
            assert job["ok"] and [c["status"] for c in job["checks"]] == ["pass"] * 5
            assert job["evidence"]["daemon_id"] == ids[name]  # built in this target's own nested daemon
    assert ids[a] != ids[b]
