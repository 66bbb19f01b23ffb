"""The Docker engine the tests get: it really runs containers."""

from __future__ import annotations

import os
import shutil

import pytest

from support.engine import start_private_engine

pytestmark = pytest.mark.docker


def test_engine_runs_a_container_from_an_image_built_on_the_spot(docker_client, busybox_image):
    output = docker_client.containers.run(busybox_image, remove=True, network_mode="host")
    assert output.strip() == b"hello from busybox"
    image = docker_client.images.get(busybox_image)
    assert len(image.history()) >= 1


def test_engine_reports_a_real_daemon(docker_client):
    info = docker_client.info()
    assert info["ID"] and info["ServerVersion"]


def test_private_engine_leaves_nothing_behind():
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a private dockerd needs root and dockerd")
    engine = start_private_engine()
    workdir = engine.workdir
    engine.stop()
    assert not workdir.exists()
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        assert str(workdir) not in mounts.read()
