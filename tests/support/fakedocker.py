"""A small in-memory stand-in for the parts of a docker SDK client that the wrapper code uses.

It keeps containers, volumes and images in dicts and can be told to fail the way real engines
do (the error texts are copied from a real 20.10 engine's answers), so the unit tests exercise
the decisions in ``dindjobs.wrapper`` without an engine. Every change to the engine's state is
logged in ``FakeEngine.changes``, so a test can show that nothing was touched.
"""

from __future__ import annotations

import copy
import itertools

import docker.errors
import requests
from docker.models.containers import ExecResult


def api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    return cls(f"{status} error", response=response, explanation=explanation)


CAPS_FAILURE = ("failed to create shim task: OCI runtime create failed: runc create failed: unable to start "
                "container process: unable to apply caps: operation not permitted: unknown")


class FakeContainer:
    def __init__(self, engine: FakeEngine, cid: str, name: str, body: dict) -> None:
        self.engine, self.id, self.name, self.body = engine, cid, name, body
        self.status = "created"
        self.health: str | None = None
        self.restart_count = 0
        self.crash_looping = False  # each look at the state sees one more restart
        self.stop_calls: list[int] = []
        self.exec_results: dict[tuple, tuple[int, bytes]] = {}

    @property
    def labels(self) -> dict:
        return self.body.get("Labels") or {}

    @property
    def attrs(self) -> dict:
        if self.crash_looping:
            self.status, self.restart_count = "restarting", self.restart_count + 1
        state = {"Status": self.status, "ExitCode": 1 if self.restart_count else 0}
        if self.health:
            state["Health"] = {"Status": self.health}
        return {"State": state, "Image": self.engine.image_ids[self.body["Image"]],
                "Config": {"Image": self.body["Image"], "Labels": self.labels}, "RestartCount": self.restart_count}

    def start(self) -> None:
        self.engine.api.start(self.id)

    def stop(self, timeout: int) -> None:
        self.engine.changes.append(f"stop {self.name}")
        self.stop_calls.append(timeout)
        self.status = "exited"

    def remove(self, v: bool = False) -> None:
        self.engine.changes.append(f"remove {self.name}")
        del self.engine.containers_by_name[self.name]

    def exec_run(self, cmd, user=""):
        key = tuple(cmd)
        code, out = self.exec_results.get(key, (127, b"not scripted"))
        return ExecResult(code, out)


class FakeVolume:
    def __init__(self, engine: FakeEngine, name: str, labels: dict | None) -> None:
        self.engine, self.name = engine, name
        self.attrs = {"Name": name, "Labels": labels}

    def remove(self) -> None:
        self.engine.changes.append(f"remove volume {self.name}")
        del self.engine.volumes_by_name[self.name]


class _Containers:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def get(self, name: str) -> FakeContainer:
        try:
            return self.engine.containers_by_name[name]
        except KeyError:
            raise api_error(404, f"No such container: {name}") from None

    def list(self, all: bool = False, filters: dict | None = None) -> list[FakeContainer]:  # noqa: A002 - the SDK's name
        """The containers (running ones unless ``all``), filtered by ``{"label": "KEY=VALUE"}`` only."""
        wanted = (filters or {}).get("label")
        key, _, value = wanted.partition("=") if wanted else ("", "", "")
        return [c for c in self.engine.containers_by_name.values()
                if (all or c.status == "running") and (not wanted or c.labels.get(key) == value)]


class _Volumes:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def get(self, name: str) -> FakeVolume:
        try:
            return self.engine.volumes_by_name[name]
        except KeyError:
            raise api_error(404, f"get {name}: no such volume") from None

    def create(self, name: str, driver: str = "local", labels: dict | None = None) -> FakeVolume:
        self.engine.changes.append(f"create volume {name}")
        volume = FakeVolume(self.engine, name, labels)
        self.engine.volumes_by_name[name] = volume
        return volume


class _Image:
    def __init__(self, image_id: str) -> None:
        self.id = image_id
        self.short_id = image_id[:19]


class _Images:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def get(self, name: str) -> _Image:
        if name not in self.engine.image_ids:
            response = requests.Response()
            response.status_code = 404
            raise docker.errors.ImageNotFound(f"No such image: {name}", response=response)
        return _Image(self.engine.image_ids[name])


class _Networks:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine

    def list(self, names=None):
        return [n for n in self.engine.network_names if not names or n in names]


class _API:
    base_url = "http+docker://localhost"

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.created: list[dict] = []
        self.removed: list[str] = []

    def create_container_from_config(self, body: dict, name: str) -> dict:
        self.created.append(copy.deepcopy(body))
        for cap in (body.get("HostConfig") or {}).get("CapAdd") or []:
            if cap in self.engine.unknown_caps:
                raise api_error(400, f'invalid CapAdd: unknown capability: "{cap}"')
        if name in self.engine.containers_by_name:
            raise api_error(409, f'Conflict. The container name "/{name}" is already in use')
        self.engine.changes.append(f"create {name}")
        container = FakeContainer(self.engine, f"c{next(self.engine.ids)}", name, body)
        self.engine.containers_by_name[name] = container
        return {"Id": container.id}

    def _by_id(self, cid: str) -> FakeContainer:
        return next(c for c in self.engine.containers_by_name.values() if c.id == cid)

    def start(self, cid: str) -> None:
        container = self._by_id(cid)
        self.engine.changes.append(f"start {container.name}")
        host_config = container.body.get("HostConfig") or {}
        if host_config.get("Privileged") and self.engine.privileged_fails:
            raise api_error(500, CAPS_FAILURE)
        if self.engine.start_error:
            raise api_error(500, self.engine.start_error)
        container.status = "running"

    def remove_container(self, cid: str, force: bool = False) -> None:
        container = self._by_id(cid)
        self.engine.changes.append(f"remove {container.name}")
        self.removed.append(cid)
        del self.engine.containers_by_name[container.name]


class FakeEngine:
    """A fake ``docker.DockerClient``: the attributes and methods our code calls, backed by dicts."""

    def __init__(self, *, has_bridge: bool = False, privileged_fails: bool = False,
                 image_ids: dict | None = None, runtimes=("runc",), unknown_caps=(),
                 start_error: str | None = None) -> None:
        self.ids = itertools.count(1)
        self.network_names = ["host", "none"] + (["bridge"] if has_bridge else [])
        self.privileged_fails = privileged_fails
        self.start_error = start_error
        self.image_ids = dict({"dindjobs-wrapper:latest": "sha256:" + "a" * 64} if image_ids is None else image_ids)
        self.runtimes = set(runtimes)
        self.unknown_caps = set(unknown_caps)
        self.containers_by_name: dict[str, FakeContainer] = {}
        self.volumes_by_name: dict[str, FakeVolume] = {}
        self.containers = _Containers(self)
        self.volumes = _Volumes(self)
        self.images = _Images(self)
        self.networks = _Networks(self)
        self.api = _API(self)
        self.changes: list[str] = []  # every create, start, stop and remove, in order

    def add_container(self, name: str, labels: dict, status: str = "running",
                      image: str = "dindjobs-wrapper:latest") -> FakeContainer:
        """A container that was there before the test (not logged as a change)."""
        container = FakeContainer(self, f"c{next(self.ids)}", name, {"Image": image, "Labels": labels})
        container.status = status
        self.containers_by_name[name] = container
        return container

    def info(self) -> dict:
        return {"ID": "HOST:DAEMON:ID", "Runtimes": {r: {} for r in self.runtimes}}

    def df(self) -> dict:
        return {"Volumes": [{"Name": n, "UsageData": {"Size": 4096}} for n in self.volumes_by_name]}
