"""The Docker engine the tests get: it really runs containers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.docker


def test_engine_runs_a_container_from_an_image_built_on_the_spot(docker_client, busybox_image):
    output = docker_client.containers.run(busybox_image, remove=True, network_mode="host")
    assert output.strip() == b"hello from busybox"
    image = docker_client.images.get(busybox_image)
    assert len(image.history()) >= 1


def test_engine_reports_a_real_daemon(docker_client):
    info = docker_client.info()
    assert info["ID"] and info["ServerVersion"]
