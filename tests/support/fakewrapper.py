"""A wrapper on a fake engine, with fixed answers from its nested and host daemons.

It is a real :class:`dindjobs.wrapper.container.Wrapper` (so "is it ours, is it running" are
decided by the real code) on a :class:`support.fakedocker.FakeEngine`; only the questions that
need a nested daemon (its ID, its images) and the host daemon are answered from the facts given.
``wrapper.client.changes`` lists what was done to the engine.
"""

from __future__ import annotations

import json

from dindjobs.errors import DockerEngineError
from dindjobs.wrapper.container import VOLUME_ROLES, Wrapper
from dindjobs.wrapper.spec import LABEL_SETTINGS, LABEL_URL, managed_labels
from support.fakedocker import FakeEngine

NESTED = "NEST:AAAA:BBBB"
HOST = "HOST:CCCC:DDDD"
IMAGE = "sha256:" + "ab" * 32
URL = "http://127.0.0.1:18080/"


class FakeWrapper(Wrapper):
    """Wrapper ``name``: its container (``container``: a state, or None when absent; ``managed``:
    labelled as ours), which of its volumes exist, and what its daemons answer."""

    def __init__(self, name: str = "w", *, container: str | None = "running", managed: bool = True,
                 volumes=(), nested=NESTED, host=HOST, nested_images=(IMAGE,), host_images=(), host_down=False):
        super().__init__(FakeEngine(), name)
        if container is not None:
            labels = {**(managed_labels(name, "wrapper") if managed else {}), LABEL_URL: URL,
                      LABEL_SETTINGS: json.dumps({"image": "dindjobs-wrapper:latest", "port": 18080})}
            self.client.add_container(name, labels, status=container)
        roles = dict(zip(self.volume_names, VOLUME_ROLES, strict=True))
        for volume in volumes:
            self.client.volumes.create(volume, labels=managed_labels(name, roles[volume]))
        self.client.changes.clear()
        self.nested, self.host, self.host_down = nested, host, host_down
        self.nested_images, self.host_images = set(nested_images), set(host_images)

    def nested_daemon_id(self):
        return self.nested

    def host_daemon_id(self):
        if self.host_down:
            raise DockerEngineError("no Docker engine answers at unix:///var/run/docker.sock")
        return self.host

    def image_exists_in_nested(self, image_id):
        return image_id in self.nested_images

    def image_exists_on_host(self, image_id):
        if self.host_down:
            raise DockerEngineError("no Docker engine answers")
        return image_id in self.host_images
