"""A stand-in for the four questions verify's Nesting asks a dindjobs.wrapper.container.Wrapper."""

from __future__ import annotations

from dindjobs.errors import DockerEngineError

NESTED = "NEST:AAAA:BBBB"
HOST = "HOST:CCCC:DDDD"
IMAGE = "sha256:" + "ab" * 32


class FakeWrapper:
    """The four questions Nesting asks a Wrapper, answered from fixed facts."""

    def __init__(self, nested=NESTED, host=HOST, nested_images=(IMAGE,), host_images=(), host_down=False):
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
