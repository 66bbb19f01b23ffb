"""The Docker engine through the Docker SDK: connecting, what the engine offers, and its errors.

Engine errors become :class:`~dindjobs.errors.DockerEngineError` with a one-line message that
says what to do. The wrapper's own lifecycle is :mod:`dindjobs.wrapper.container`.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import docker
import docker.errors
import requests.exceptions

from dindjobs.errors import DockerEngineError, WrapperError
from dindjobs.wrapper.spec import EngineFacts, host_capabilities


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def engine_error(exc: Exception, where: str = "the Docker engine") -> DockerEngineError:
    """A one-line, actionable error for a failure to reach or use the engine."""
    causes = list(_causes(exc))
    text = " ".join(str(c) for c in causes)
    if any(isinstance(c, PermissionError) for c in causes) or "Permission denied" in text:
        return DockerEngineError(
            f"permission denied on {where}",
            hint="add your user to the 'docker' group (then log in again), or run as root",
        )
    if any(isinstance(c, (FileNotFoundError, ConnectionRefusedError)) for c in causes) or any(
        isinstance(c, requests.exceptions.ConnectionError) for c in causes
    ):
        return DockerEngineError(
            f"no Docker engine answers at {where}",
            hint="start dockerd, e.g. `systemctl start docker`, or set DOCKER_HOST",
        )
    if isinstance(exc, docker.errors.APIError):
        return DockerEngineError(f"the Docker engine refused: {exc.explanation or exc}")
    return DockerEngineError(f"Docker engine error: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def engine_errors(where: str = "the Docker engine") -> Iterator[None]:
    """Turn SDK and connection exceptions inside the block into :class:`DockerEngineError`."""
    try:
        yield
    except (WrapperError, DockerEngineError):
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise engine_error(exc, where) from None


def connect(docker_host: str | None = None, timeout: int = 120) -> docker.DockerClient:
    """A client for ``docker_host`` (default: ``DOCKER_HOST`` or the local socket), checked to answer."""
    where = docker_host or _env_docker_host()
    with engine_errors(where):
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, version="auto", timeout=timeout)
        else:
            client = docker.from_env(version="auto", timeout=timeout)
        client.ping()
    return client


def _env_docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_facts(client: docker.DockerClient) -> EngineFacts:
    """Bridge network, runtimes and grantable capabilities of the engine."""
    with engine_errors():
        has_bridge = bool(client.networks.list(names=["bridge"]))
        runtimes = frozenset((client.info().get("Runtimes") or {}).keys())
    local = client.api.base_url.startswith("http+docker://")
    caps = host_capabilities() if local else EngineFacts(has_bridge).capabilities
    return EngineFacts(has_bridge=has_bridge, runtimes=runtimes, capabilities=caps, local=local)


def create_container(api: docker.APIClient, body: dict, name: str) -> dict:
    """Create a container from an Engine API body; a capability the engine does not know (e.g.
    CAP_BPF on 20.10, when the kernel has it) is dropped from ``CapAdd`` and the create retried."""
    while True:
        try:
            return api.create_container_from_config(body, name)
        except docker.errors.APIError as exc:
            unknown = re.search(r'unknown capability: "?(CAP_[A-Z_]+)', str(exc.explanation or ""))
            if exc.status_code == 409:
                raise WrapperError(f"a container named {name} appeared meanwhile", hint="run `dindjobs up` again") from None
            if not unknown or unknown.group(1) not in body["HostConfig"].get("CapAdd", []):
                raise
            body["HostConfig"]["CapAdd"].remove(unknown.group(1))
