"""The wrapper container on the host engine, through the Docker SDK.

This module and its helpers are the only code importing ``docker``: ``wrapper_lifecycle``
(up/down/status/logs), ``wrapper_image`` (builds) and ``wrapper_spec`` (pure run options, no
SDK). :class:`Wrapper` is what other modules use (``exec``, ``nested_daemon_id``,
``image_exists_*``, ``stop``/``start``). Engine errors become
:class:`~dindjobs.errors.DockerEngineError` with a one-line message that says what to do.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator

import docker
import docker.errors
import docker.types
import requests.exceptions

from dindjobs.config import DEFAULT_NAME
from dindjobs.errors import DockerEngineError, TimeoutExpired, WrapperError
from dindjobs.wrapper.spec import (
    DOCKER_DATA,
    JENKINS_HOME,
    LABEL_NAME,
    LABEL_ROLE,
    LABEL_URL,
    STOP_TIMEOUT,
    EngineFacts,
    host_capabilities,
    is_managed,
    managed_labels,
    volume_names,
)

Progress = Callable[[str], None]
NESTED_TIMEOUT = 30  # seconds for one `docker` call inside the wrapper
ARCHIVE_CHUNK = 1 << 20
VOLUME_ROLES = ("jenkins-home", "docker-data")
HELPER_ROLES = ("restore", "backup")


def no_progress(_: str) -> None:
    """A progress callback that discards messages."""


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


class Wrapper:
    """One wrapper (container plus two volumes) on the host engine, by name."""

    def __init__(self, client: docker.DockerClient, name: str = DEFAULT_NAME) -> None:
        self.client = client
        self.name = name

    @property
    def container_name(self) -> str:
        return self.name

    @property
    def volume_names(self) -> tuple[str, str]:
        """(Jenkins home volume, nested daemon data volume)."""
        return volume_names(self.name)

    @property
    def jenkins_home_volume(self) -> str:
        return self.volume_names[0]

    @property
    def docker_data_volume(self) -> str:
        return self.volume_names[1]

    def container(self):
        """The container (docker SDK object, state refreshed) or None if absent."""
        with engine_errors():
            try:
                return self.client.containers.get(self.container_name)
            except docker.errors.NotFound:
                return None

    def running_container(self):
        """The container, which must be ours and running; else a WrapperError saying what to do."""
        container = self.container()
        if container is None:
            raise WrapperError(f"no wrapper named {self.name}", hint="start it with `dindjobs up`")
        if not is_managed(container.labels, self.name):
            raise WrapperError(f"container {self.name} is not managed by dindjobs", hint="use another --name")
        if container.status != "running":
            raise WrapperError(f"wrapper {self.name} is {container.status}", hint="start it with `dindjobs up`")
        return container

    @property
    def url(self) -> str | None:
        container = self.container()
        return container.labels.get(LABEL_URL) if container is not None else None

    def exec(self, cmd: list[str] | str, user: str | None = None) -> tuple[int, str]:
        """Run ``cmd`` in the running wrapper; (exit code, stdout and stderr merged)."""
        container = self.running_container()
        with engine_errors():
            result = container.exec_run(cmd, user=user or "")
        return int(result.exit_code), result.output.decode("utf-8", "replace")

    def audit_exec(self, cmd: list[str]) -> tuple[int, str]:
        """Run a read-only ``cmd`` as root in the running container, even one dindjobs did not
        create (`doctor` audits wrappers started by hand too)."""
        container = self.container()
        if container is None or container.status != "running":
            raise WrapperError(f"no running container named {self.name}")
        with engine_errors():
            result = container.exec_run(cmd, user="0")
        return int(result.exit_code), result.output.decode("utf-8", "replace")

    def _nested(self, *args: str) -> tuple[int, str]:
        # `timeout` bounds a hung nested daemon: the docker CLI has no timeout of its own.
        return self.exec(["timeout", str(NESTED_TIMEOUT), "docker", *args])

    def nested_daemon_id(self) -> str:
        """The nested daemon's ID (as `docker info` inside the wrapper prints it)."""
        code, out = self._nested("info", "--format", "{{.ID}}")
        daemon_id = out.strip().splitlines()[-1].strip() if out.strip() else ""
        if code != 0 or not daemon_id or " " in daemon_id:
            raise WrapperError(f"the nested daemon in {self.name} does not answer: {_last_line(out)}")
        return daemon_id

    def nested_daemon_ready(self) -> bool:
        """True when the nested daemon answers inside the running wrapper."""
        try:
            self.nested_daemon_id()
        except (WrapperError, DockerEngineError):
            return False
        return True

    def host_daemon_id(self) -> str:
        """The host engine's daemon ID."""
        with engine_errors():
            return str(self.client.info()["ID"])

    def image_exists_in_nested(self, image_id: str) -> bool:
        """True when the nested daemon has the image (ID or name)."""
        code, _ = self._nested("image", "inspect", "--format", "{{.Id}}", image_id)
        return code == 0

    def image_exists_on_host(self, image_id: str) -> bool:
        """True when the host engine has the image (ID or name)."""
        with engine_errors():
            try:
                self.client.images.get(image_id)
            except docker.errors.ImageNotFound:
                return False
        return True

    def stop(self, timeout: int = STOP_TIMEOUT) -> None:
        """Graceful stop: SIGTERM (the image shuts down Jenkins, then dockerd), SIGKILL after ``timeout``."""
        container = self.container()
        if container is not None and container.status in ("running", "restarting", "paused"):
            with engine_errors():
                container.stop(timeout=timeout)

    def start(self) -> None:
        """Start the existing (stopped) wrapper container."""
        container = self.container()
        if container is None:
            raise WrapperError(f"no wrapper named {self.name}", hint="create it with `dindjobs up`")
        with engine_errors():
            container.start()

    def health(self) -> str:
        """`healthy`, `unhealthy`, `starting`, `none` (no healthcheck) or `absent`."""
        container = self.container()
        if container is None:
            return "absent"
        return (container.attrs.get("State", {}).get("Health") or {}).get("Status", "none")

    def wait_healthy(self, timeout: float, progress: Progress = no_progress, interval: float = 1.0) -> None:
        """Wait until the container is healthy (or running, without a healthcheck)."""
        deadline = time.monotonic() + timeout
        last = ""
        first_restarts = None
        while True:
            container = self.container()
            if container is None:
                raise WrapperError(f"wrapper {self.name} disappeared while waiting")
            state = container.attrs.get("State", {})
            health = (state.get("Health") or {}).get("Status", "none")
            if state.get("Status") == "running" and health in ("healthy", "none"):
                return
            restarts = int(container.attrs.get("RestartCount") or 0)
            first_restarts = restarts if first_restarts is None else first_restarts
            # The restart policy hides a crash loop behind "restarting"/"running": fail fast.
            crashing = restarts - first_restarts >= 3
            if crashing or (state.get("Status") == "exited" and state.get("ExitCode") not in (None, 0)):
                raise WrapperError(
                    f"wrapper {self.name} {'keeps restarting' if crashing else 'exited'}: "
                    f"last exit code {state.get('ExitCode')}",
                    hint=f"see `dindjobs logs --name {self.name}`",
                )
            seen = f"{state.get('Status')}/{health}"
            if seen != last:
                progress(f"wrapper {self.name}: {seen}")
                last = seen
            if time.monotonic() >= deadline:
                raise TimeoutExpired(f"wrapper {self.name} not healthy after {timeout:.0f}s (last state: {seen})")
            time.sleep(interval)


    # --- volumes and archives (backup/restore) -----------------------------------------------

    def volume_labels(self, volume_name: str) -> dict[str, str] | None:
        """A volume's labels ({} when it has none), or None when it does not exist."""
        with engine_errors():
            try:
                return dict(self.client.volumes.get(volume_name).attrs.get("Labels") or {})
            except docker.errors.NotFound:
                return None

    def existing_volumes(self) -> list[str]:
        """Which of this wrapper's two volumes exist."""
        return [v for v in self.volume_names if self.volume_labels(v) is not None]

    def create_volumes(self) -> None:
        """Create both volumes, labelled as ours (they must not exist)."""
        with engine_errors():
            for volume, role in zip(self.volume_names, VOLUME_ROLES, strict=True):
                self.client.volumes.create(name=volume, driver="local", labels=managed_labels(self.name, role))

    def remove(self, volumes: bool = False, stop_timeout: int = STOP_TIMEOUT) -> None:
        """Stop and remove the container (ours only); with ``volumes``, remove our volumes too."""
        container = self.container()
        if container is not None:
            if not is_managed(container.labels, self.name):
                raise WrapperError(f"container {self.name} is not managed by dindjobs: leaving it alone")
            self.stop(timeout=stop_timeout)
            with engine_errors():
                container.remove(v=False)
        for volume in self.existing_volumes() if volumes else ():
            if not is_managed(self.volume_labels(volume), self.name):
                raise WrapperError(f"volume {volume} was not created by dindjobs: leaving it alone",
                                   hint="remove it yourself, or restore under another --name")
            with engine_errors():
                self.client.volumes.get(volume).remove()

    def get_archive(self, path: str) -> Iterator[bytes]:
        """A tar stream of ``path`` in the container (running or stopped), in chunks."""
        container = self.container()
        if container is None:
            raise WrapperError(f"no wrapper named {self.name}", hint="start it with `dindjobs up`")
        with engine_errors():
            chunks, _stat = container.get_archive(path, chunk_size=ARCHIVE_CHUNK)
        return _guarded(chunks)

    @contextlib.contextmanager
    def loader(self, image: str) -> Iterator[Callable[[str, Iterable[bytes]], None]]:
        """A created, never started container of ``image`` with both volumes mounted where the
        wrapper mounts them; yields ``put(path, chunks)`` that extracts a tar stream at ``path``
        (owners and modes as in the tar). The container is removed afterwards."""
        mounts = [docker.types.Mount(JENKINS_HOME, self.jenkins_home_volume, type="volume"),
                  docker.types.Mount(DOCKER_DATA, self.docker_data_volume, type="volume")]
        with engine_errors():
            host_config = self.client.api.create_host_config(mounts=mounts, network_mode="none")
            created = self.client.api.create_container(
                image, name=f"{self.name}-restore", host_config=host_config,
                labels=managed_labels(self.name, "restore"))
        try:
            container = self.client.containers.get(created["Id"])

            def put(path: str, chunks: Iterable[bytes]) -> None:
                with engine_errors():
                    if not container.put_archive(path, chunks):
                        raise DockerEngineError(f"the engine refused to extract into {path}")

            yield put
        finally:
            with engine_errors():
                self.client.api.remove_container(created["Id"], force=True)


    # --- helper containers (backup/restore) ---------------------------------------------------

    def remove_helpers(self) -> list[str]:
        """Remove this wrapper's helper containers (labelled as ours, role ``restore`` or
        ``backup``) that an interrupted restore or backup left holding the volumes; their names."""
        removed = []
        with engine_errors():
            for container in self.client.containers.list(all=True, filters={"label": f"{LABEL_NAME}={self.name}"}):
                if is_managed(container.labels, self.name) and container.labels.get(LABEL_ROLE) in HELPER_ROLES:
                    container.remove(force=True)
                    removed.append(container.name)
        return removed

    def volume_tar(self, image: str, path: str) -> Iterator[bytes]:
        """A tar stream of ``path`` written by GNU tar in a helper container of ``image`` (the
        wrapper's own, stopped) with both volumes mounted read-only. Unlike the engine's archive
        API it keeps every extended attribute: overlay2 marks a directory that a layer replaced
        wholesale with ``trusted.overlay.opaque``, and without it the lower layers show through."""
        parent, _, top = path.rstrip("/").rpartition("/")
        command = ["--create", "--file=-", "--format=posix", "--xattrs", "--xattrs-include=*", "--numeric-owner",
                   "--pax-option=delete=atime,delete=ctime", f"--directory={parent or '/'}", top]
        mounts = [docker.types.Mount(JENKINS_HOME, self.jenkins_home_volume, type="volume", read_only=True),
                  docker.types.Mount(DOCKER_DATA, self.docker_data_volume, type="volume", read_only=True)]
        name = f"{self.name}-backup"
        with engine_errors():
            with contextlib.suppress(docker.errors.NotFound):
                stale = self.client.containers.get(name)
                if is_managed(stale.labels, self.name):
                    stale.remove(force=True)
            # Reading trusted.* attributes needs CAP_SYS_ADMIN; nothing else is granted.
            host_config = self.client.api.create_host_config(
                mounts=mounts, network_mode="none", cap_add=["SYS_ADMIN"], log_config={"Type": "none"})
            created = self.client.api.create_container(
                image, command=command, entrypoint=["tar"], user="0", name=name, host_config=host_config,
                labels=managed_labels(self.name, "backup"))
        try:
            stderr = bytearray()
            with engine_errors():
                frames = self.client.api.attach(created["Id"], stdout=True, stderr=True, stream=True, demux=True)
                self.client.api.start(created["Id"])
                for out, err in frames:
                    if err:
                        stderr += err[-4096:]
                    if out:
                        yield out
                code = self.client.api.wait(created["Id"]).get("StatusCode")
            if code != 0:
                raise WrapperError(f"tar of {path} in the helper container failed (exit {code}): "
                                   f"{_last_line(stderr.decode('utf-8', 'replace'))}")
        finally:
            with engine_errors():
                self.client.api.remove_container(created["Id"], force=True)


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    with engine_errors():
        yield from chunks


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
