"""One wrapper (a container plus two named volumes) on the host engine: its whole lifecycle.

:class:`Wrapper` finds the container and tells whether it is ours, brings it up (volumes,
security mode, networking), takes it down, reports its status and logs, runs commands inside
it, asks its nested daemon, and moves volume contents in and out (backup/restore). Only
resources labelled as this wrapper's are ever changed (:func:`dindjobs.wrapper.spec.is_managed`);
a foreign container or volume with our name is an error or is kept, never touched. The run
options come from :mod:`dindjobs.wrapper.spec`; the SDK plumbing from :mod:`dindjobs.wrapper.engine`.
Progress goes through a callback so nothing here prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import docker
import docker.errors
import docker.types

from dindjobs.config import DEFAULT_NAME
from dindjobs.errors import DockerEngineError, TimeoutExpired, WrapperError
from dindjobs.jenkins.identity import label_from_headers
from dindjobs.progress import Progress, no_progress
from dindjobs.wrapper.engine import connect, create_container, engine_error, engine_errors, engine_facts
from dindjobs.wrapper.spec import (
    DOCKER_DATA,
    JENKINS_HOME,
    LABEL_NAME,
    LABEL_NETWORK,
    LABEL_ROLE,
    LABEL_SECURITY,
    LABEL_SETTINGS,
    LABEL_URL,
    STOP_TIMEOUT,
    EngineFacts,
    WrapperSpec,
    effective_network,
    is_managed,
    managed_labels,
    recorded_settings,
    run_options,
    settings_differences,
    volume_names,
)

NESTED_TIMEOUT = 30  # seconds for one `docker` call inside the wrapper
ARCHIVE_CHUNK = 1 << 20
VOLUME_ROLES = ("jenkins-home", "docker-data")
CAPS_ERROR = "unable to apply caps"
UP_HINT = "start it with `dindjobs up`"
HELPER_ROLES = ("restore", "backup")


@dataclasses.dataclass
class UpResult:
    """What `up` did: ``created``, ``started`` (existing container) or ``unchanged``."""

    action: str
    name: str
    url: str
    security: str
    network: str
    volumes: dict[str, str]  # name -> "created" | "reused"
    password_file: str | None
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class DownResult:
    """What `down` did: container ``removed``/``absent``; each volume ``removed``/``kept``/``absent``."""

    name: str
    container: str
    volumes: dict[str, str]
    password_file: str | None = None  # "removed <path>" when the generated password was forgotten


def is_running(container) -> bool:
    """Whether a container (docker SDK object) is running."""
    return container.status == "running"


def no_wrapper(name: str) -> WrapperError:
    """The one error for a wrapper that does not exist (status, logs and doctor exit 1 with it)."""
    return WrapperError(f"no wrapper named {name}", hint=UP_HINT)


def find_running(name: str, timeout: int = 60) -> tuple[Wrapper | None, str | None]:
    """The running wrapper ``name`` on the engine (``DOCKER_HOST``), or None and why not."""
    try:
        wrapper = Wrapper(connect(timeout=timeout), name)
        wrapper.running_container()
    except (DockerEngineError, WrapperError) as exc:
        return None, exc.one_line()
    return wrapper, None


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

    # --- finding it: is it there, is it ours, is it running -----------------------------------

    def container(self):
        """The container of that name (docker SDK object, state refreshed), ours or not; None if absent."""
        with engine_errors():
            try:
                return self.client.containers.get(self.container_name)
            except docker.errors.NotFound:
                return None

    def is_ours(self, labels: dict[str, str] | None) -> bool:
        """Whether a container's or volume's labels say dindjobs created it for this wrapper."""
        return is_managed(labels, self.name)

    def owned(self, hint: str = "use another --name"):
        """Our container, or None when there is none; a WrapperError when the container of that
        name was not created by dindjobs (it is never touched)."""
        container = self.container()
        if container is not None and not self.is_ours(container.labels):
            raise WrapperError(f"container {self.name} is not managed by dindjobs: leaving it alone", hint=hint)
        return container

    def existing(self):
        """Our container, which must exist (running or not); else a WrapperError saying what to do."""
        container = self.owned()
        if container is None:
            raise no_wrapper(self.name)
        return container

    def running_container(self):
        """Our container, which must be running; else a WrapperError saying what to do."""
        container = self.existing()
        if not is_running(container):
            raise WrapperError(f"wrapper {self.name} is {container.status}", hint=UP_HINT)
        return container

    @property
    def url(self) -> str | None:
        container = self.container()
        return container.labels.get(LABEL_URL) if container is not None else None

    # --- up ------------------------------------------------------------------------------------

    def up(self, spec: WrapperSpec, facts: EngineFacts | None = None, progress: Progress = no_progress) -> UpResult:
        """Create volumes and start the wrapper; a no-op when it already runs with the same settings."""
        if spec.name != self.name:
            raise ValueError(f"spec for {spec.name!r} given to wrapper {self.name!r}")
        facts = facts or engine_facts(self.client)
        network = effective_network(spec, facts)
        existing = self.owned(hint="choose another --name")
        if existing is not None:
            return self._up_existing(existing, spec, network, progress)
        with engine_errors():
            try:
                image = self.client.images.get(spec.image)
            except docker.errors.ImageNotFound:
                raise DockerEngineError(
                    f"image {spec.image} is not on this engine",
                    hint="build it with `dindjobs image --offline` or `make image OFFLINE=1`",
                ) from None
        notes = []
        if network == "host" and spec.network == "auto":
            notes.append("the engine has no bridge network: using host networking, with the nested "
                         "daemon's bridge and iptables turned off")
        if not facts.local and spec.password_file is not None:
            notes.append(f"the engine is remote: the password file {spec.password_file} is bind-mounted "
                         "from the engine's host, so it must exist there at that path")
        if network == "host" and facts.local and _port_answers(spec.port):
            raise WrapperError(f"port {spec.port} on 127.0.0.1 is already in use", hint="choose another --port")
        volumes = self.ensure_volumes(progress)
        security = self._create_and_start(spec, facts, notes)
        progress(f"wrapper {spec.name} started from {spec.image} ({image.short_id})")
        return UpResult("created", spec.name, self.url or "", security, network, volumes,
                        _password_file(spec), notes)

    def _up_existing(self, container, spec: WrapperSpec, network: str, progress: Progress) -> UpResult:
        recorded = json.loads(container.labels.get(LABEL_SETTINGS, "{}"))
        security = container.labels.get(LABEL_SECURITY, "")
        differences = settings_differences(recorded, recorded_settings(spec, network), security)
        if differences:
            raise WrapperError(
                f"wrapper {spec.name} exists with different settings: {'; '.join(differences)}",
                hint="run `dindjobs down` first, which keeps the volumes, or repeat the same options",
            )
        notes = []
        with engine_errors():
            try:
                if self.client.images.get(spec.image).id != container.attrs.get("Image"):
                    notes.append(f"image {spec.image} was rebuilt since this wrapper was created: "
                                 "`dindjobs down` then `dindjobs up` to use it")
            except docker.errors.ImageNotFound:
                pass
        volumes = {v: "reused" for v in self.volume_names}
        result = UpResult("unchanged", spec.name, self.url or "", security,
                          container.labels.get(LABEL_NETWORK, network), volumes, _password_file(spec), notes)
        if not is_running(container):
            progress(f"wrapper {spec.name} exists ({container.status}): starting it")
            self.start()
            result.action = "started"
        return result

    def _create_and_start(self, spec: WrapperSpec, facts: EngineFacts, notes: list[str]) -> str:
        """Create and start the container; falls back from privileged to caps when the kernel needs it."""
        mode = spec.security
        try:
            self._create_start(spec, facts, mode)
        except docker.errors.APIError as exc:
            if mode != "privileged" or CAPS_ERROR not in str(exc.explanation or exc):
                raise engine_error(exc) from None
            notes.append("--privileged failed (\"unable to apply caps\": the kernel's capability bounding set "
                         "lacks some) so the wrapper runs in caps mode: every grantable capability, "
                         "unconfined seccomp/AppArmor/system paths, all devices")
            mode = "caps"
            try:
                self._create_start(spec, facts, mode)
            except docker.errors.APIError as exc2:
                raise engine_error(exc2) from None
        return mode

    def _create_start(self, spec: WrapperSpec, facts: EngineFacts, mode: str) -> None:
        api = self.client.api
        created = create_container(api, run_options(spec, facts, security=mode), spec.name)
        try:
            api.start(created["Id"])
        except docker.errors.APIError:
            # Nothing half-made stays behind: a created-but-unstartable container is removed.
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(created["Id"], force=True)
            raise

    # --- down ----------------------------------------------------------------------------------

    def down(self, remove_volumes: bool = False, *, progress: Progress = no_progress,
             stop_timeout: int = STOP_TIMEOUT, forget: Path | None = None, strict: bool = False) -> DownResult:
        """Stop the wrapper gracefully and remove it; with ``remove_volumes``, remove our labelled volumes.

        Our helper containers left by an interrupted restore or backup go first with the volumes.
        A volume of this wrapper's name that dindjobs did not create is kept; with ``strict`` it is
        an error before anything is touched (restore must not load into it). ``forget``: a state
        file (the generated admin password) deleted once the volumes are gone, since a fresh
        Jenkins home gets a fresh password.
        """
        container = self.owned()
        labels = {v: self.volume_labels(v) for v in self.volume_names}
        foreign = [v for v, found in labels.items() if found is not None and not self.is_ours(found)]
        if strict and remove_volumes and foreign:
            raise WrapperError(f"volume {foreign[0]} was not created by dindjobs: leaving it alone",
                               hint="remove it yourself, or use another --name")
        if remove_volumes:  # an interrupted restore's or backup's helper would hold the volumes
            for helper in self.remove_helpers():
                progress(f"removed {helper}, left by an interrupted restore or backup")
        state = "absent"
        if container is not None:
            progress(f"stopping wrapper {self.name} (up to {stop_timeout}s for Jenkins, then the nested daemon)")
            self.stop(timeout=stop_timeout)
            with engine_errors():
                container.remove(v=False)
            state = "removed"
        volumes = {}
        for volume_name, found in labels.items():
            if found is None:
                volumes[volume_name] = "absent"
            elif not remove_volumes:
                volumes[volume_name] = "kept"
            elif volume_name in foreign:
                volumes[volume_name] = "kept (not created by dindjobs)"
            else:
                with engine_errors():
                    self.client.volumes.get(volume_name).remove()
                volumes[volume_name] = "removed"
                progress(f"volume {volume_name} removed")
        result = DownResult(self.name, state, volumes)
        if remove_volumes and forget is not None and not foreign:
            if forget.exists():
                forget.unlink()
                result.password_file = f"removed {forget}"
            with contextlib.suppress(OSError):  # the wrapper's state directory, when nothing else is left in it
                forget.parent.rmdir()
        return result

    # --- volumes -------------------------------------------------------------------------------

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

    def ensure_volumes(self, progress: Progress = no_progress) -> dict[str, str]:
        """Create the missing volumes, labelled as ours; ``{name: "created" | "reused"}``. A volume
        someone else created is reused as it is (and `down --volumes` keeps it)."""
        result = {}
        for volume, role in zip(self.volume_names, VOLUME_ROLES, strict=True):
            labels = self.volume_labels(volume)
            if labels is None:
                with engine_errors():
                    self.client.volumes.create(name=volume, driver="local", labels=managed_labels(self.name, role))
                result[volume] = "created"
                progress(f"volume {volume} created")
                continue
            result[volume] = "reused"
            if not self.is_ours(labels):
                progress(f"volume {volume} exists without dindjobs labels: reusing it, `down --volumes` will keep it")
        return result

    # --- status and logs -----------------------------------------------------------------------

    def status(self, http_timeout: float = 5.0) -> dict[str, object]:
        """Container state and health, security mode, URL, volumes with sizes, and both halves' reachability."""
        container = self.container()
        report: dict[str, object] = {"name": self.name, "managed": False, "state": "absent", "health": "absent",
                                     "security": None, "network": None, "url": None, "image": None}
        if container is not None:
            state = container.attrs.get("State", {})
            report.update(
                managed=self.is_ours(container.labels),
                state=state.get("Status"),
                health=(state.get("Health") or {}).get("Status", "none"),
                exit_code=state.get("ExitCode"),
                started_at=state.get("StartedAt"),
                restart_count=container.attrs.get("RestartCount", 0),
                security=container.labels.get(LABEL_SECURITY),
                network=container.labels.get(LABEL_NETWORK),
                url=container.labels.get(LABEL_URL),
                image=container.attrs.get("Config", {}).get("Image"),
            )
        report["volumes"] = self._volume_report()
        running = container is not None and is_running(container) and report["managed"]
        nested: dict[str, object] = {"reachable": False, "id": None}
        if running:
            try:
                nested = {"reachable": True, "id": self.nested_daemon_id()}
            except WrapperError as exc:
                nested["error"] = exc.message
        report["nested_daemon"] = nested
        report["jenkins"] = (probe_http(str(report["url"]), http_timeout) if running and report["url"]
                             else {"reachable": False})
        return report

    def _volume_report(self) -> list[dict[str, object]]:
        with engine_errors():
            usage = {v["Name"]: (v.get("UsageData") or {}).get("Size") for v in self.client.df().get("Volumes") or []}
        rows = []
        for volume_name in self.volume_names:
            labels = self.volume_labels(volume_name)
            if labels is None:
                rows.append({"name": volume_name, "exists": False, "managed": False, "size": None})
                continue
            size = usage.get(volume_name)
            rows.append({"name": volume_name, "exists": True, "managed": self.is_ours(labels),
                         "size": size if size is not None and size >= 0 else None})
        return rows

    def logs(self, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
        """The container's output (Jenkins and the nested daemon, stdout and stderr), streamed."""
        container = self.existing()
        with engine_errors():
            stream = container.logs(stdout=True, stderr=True, stream=True, follow=follow,
                                    tail="all" if tail is None else tail)
            yield from stream

    # --- inside the wrapper: commands and the nested daemon ------------------------------------

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
        if container is None or not is_running(container):
            raise WrapperError(f"no running container named {self.name}")
        with engine_errors():
            result = container.exec_run(cmd, user="0")
        return int(result.exit_code), result.output.decode("utf-8", "replace")

    def nested_docker(self, *args: str) -> tuple[int, str]:
        """Run the ``docker`` CLI against the nested daemon, bounded by :data:`NESTED_TIMEOUT`."""
        # `timeout` bounds a hung nested daemon: the docker CLI has no timeout of its own.
        return self.exec(["timeout", str(NESTED_TIMEOUT), "docker", *args])

    def nested_daemon_id(self) -> str:
        """The nested daemon's ID (as `docker info` inside the wrapper prints it)."""
        code, out = self.nested_docker("info", "--format", "{{.ID}}")
        daemon_id = out.strip().splitlines()[-1].strip() if out.strip() else ""
        if code != 0 or not daemon_id or " " in daemon_id:
            raise WrapperError(f"the nested daemon in {self.name} does not answer: {_last_line(out)}")
        return daemon_id

    def nested_daemon_state(self) -> str | None:
        """None when the nested daemon answers inside the running wrapper, else a short state text
        (the ``daemon_check`` of :func:`dindjobs.jenkins.readiness.wait_ready`)."""
        try:
            self.nested_daemon_id()
        except (WrapperError, DockerEngineError):
            return "not answering yet"
        return None

    def host_daemon_id(self) -> str:
        """The host engine's daemon ID."""
        with engine_errors():
            return str(self.client.info()["ID"])

    def image_exists_in_nested(self, image_id: str) -> bool:
        """True when the nested daemon has the image (ID or name)."""
        code, _ = self.nested_docker("image", "inspect", "--format", "{{.Id}}", image_id)
        return code == 0

    def image_exists_on_host(self, image_id: str) -> bool:
        """True when the host engine has the image (ID or name)."""
        with engine_errors():
            try:
                self.client.images.get(image_id)
            except docker.errors.ImageNotFound:
                return False
        return True

    # --- stop, start, health -------------------------------------------------------------------

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

    # --- volume contents in and out (backup/restore) -------------------------------------------

    def get_archive(self, path: str) -> Iterator[bytes]:
        """A tar stream of ``path`` in our container (running or stopped), in chunks."""
        container = self.existing()
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


def probe_http(url: str, timeout: float = 5.0) -> dict[str, object]:
    """A plain HTTP GET of Jenkins' login page: reachable (any HTTP answer), the status code and
    which Jenkins answered (``server``, from the response headers; None if they do not say)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/login", timeout=timeout) as response:  # noqa: S310
            return {"reachable": True, "status": response.status, "server": label_from_headers(response.headers)}
    except urllib.error.HTTPError as exc:
        return {"reachable": True, "status": exc.code, "server": label_from_headers(exc.headers)}
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"reachable": False, "error": str(reason)}


def _password_file(spec: WrapperSpec) -> str | None:
    return str(spec.password_file) if spec.password_file else None


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _guarded(chunks: Iterable[bytes]) -> Iterator[bytes]:
    with engine_errors():
        yield from chunks


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
