"""Shared fixtures: a Docker engine, tiny images built on the spot, and an isolated environment."""

from __future__ import annotations

import io
import os
import shutil
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.engine import Engine, find_engine, start_private_engine  # noqa: E402
from support.images import BUSYBOX_STATIC, busybox_context  # noqa: E402

pytest_plugins = ["support.standin_fixtures", "support.browser"]

REQUIRE_DOCKER = os.environ.get("DINDJOBS_REQUIRE_DOCKER") == "1"


def _no_docker(reason: str) -> None:
    if REQUIRE_DOCKER:
        pytest.fail(f"DINDJOBS_REQUIRE_DOCKER=1 but no Docker engine: {reason}", pytrace=False)
    pytest.skip(f"no Docker engine: {reason}")


@pytest.fixture(scope="session")
def docker_engine() -> Engine:
    """A Docker engine: DOCKER_HOST, the default socket, or a private dockerd for this run."""
    engine = find_engine()
    if engine is None:
        try:
            engine = start_private_engine()
        except RuntimeError as exc:
            _no_docker(str(exc))
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: Engine):
    """A docker SDK client bound to the test engine."""
    import docker

    client = docker.DockerClient(base_url=docker_engine.docker_host, timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client) -> str:
    """Tag of a one-file image (static busybox on scratch), built in the test engine."""
    if not BUSYBOX_STATIC.exists():
        _no_docker("Debian's busybox-static is not installed (apt-get install busybox-static)")
    tag = f"dindjobs-test-busybox:{uuid.uuid4().hex[:8]}"
    docker_client.images.build(fileobj=io.BytesIO(busybox_context()), custom_context=True, tag=tag, rm=True)
    yield tag
    docker_client.images.remove(tag, force=True)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No DINDJOBS_* variables from the caller's shell, and a private state directory."""
    for key in list(os.environ):
        if key.startswith(("DINDJOBS_", "JJB_")) and key != "DINDJOBS_REQUIRE_DOCKER":
            monkeypatch.delenv(key)
    monkeypatch.setenv("DINDJOBS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
