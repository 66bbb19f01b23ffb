"""The commands' core: `up`, `down`, `status` and `logs` of a wrapper, on top of :class:`Wrapper`.

Each function takes a docker client and returns data (or a byte stream, for logs); the
command modules print it. Progress goes through a callback so the core never prints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors

from dindjobs.errors import DockerEngineError, WrapperError
from dindjobs.wrapper.container import Progress, Wrapper, engine_error, engine_errors, engine_facts, no_progress
from dindjobs.wrapper.spec import (
    LABEL_NETWORK,
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

CAPS_ERROR = "unable to apply caps"


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


def up(client: docker.DockerClient, spec: WrapperSpec, facts: EngineFacts | None = None,
       progress: Progress = no_progress) -> UpResult:
    """Create volumes and start the wrapper; a no-op when it already runs with the same settings."""
    facts = facts or engine_facts(client)
    network = effective_network(spec, facts)
    wrapper = Wrapper(client, spec.name)
    existing = wrapper.container()
    if existing is not None:
        return _up_existing(wrapper, existing, spec, network, progress)

    with engine_errors():
        try:
            image = client.images.get(spec.image)
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
    volumes = _ensure_volumes(client, spec.name, progress)
    security = _create_and_start(client, spec, facts, progress, notes)
    progress(f"wrapper {spec.name} started from {spec.image} ({image.short_id})")
    return UpResult("created", spec.name, _url(wrapper), security, network, volumes,
                    str(spec.password_file) if spec.password_file else None, notes)


def _url(wrapper: Wrapper) -> str:
    return wrapper.url or ""


def _up_existing(wrapper: Wrapper, container, spec: WrapperSpec, network: str, progress: Progress) -> UpResult:
    if not is_managed(container.labels, spec.name):
        raise WrapperError(f"a container named {spec.name} exists and is not managed by dindjobs",
                           hint="choose another --name")
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
            if wrapper.client.images.get(spec.image).id != container.attrs.get("Image"):
                notes.append(f"image {spec.image} was rebuilt since this wrapper was created: "
                             "`dindjobs down` then `dindjobs up` to use it")
        except docker.errors.ImageNotFound:
            pass
    volumes = {v: "reused" for v in wrapper.volume_names}
    result = UpResult("unchanged", spec.name, _url(wrapper), security, container.labels.get(LABEL_NETWORK, network),
                      volumes, str(spec.password_file) if spec.password_file else None, notes)
    if container.status != "running":
        progress(f"wrapper {spec.name} exists ({container.status}): starting it")
        wrapper.start()
        result.action = "started"
    return result


def _ensure_volumes(client: docker.DockerClient, name: str, progress: Progress) -> dict[str, str]:
    result = {}
    for volume, role in zip(volume_names(name), ("jenkins-home", "docker-data"), strict=True):
        with engine_errors():
            try:
                found = client.volumes.get(volume)
            except docker.errors.NotFound:
                client.volumes.create(name=volume, driver="local", labels=managed_labels(name, role))
                result[volume] = "created"
                progress(f"volume {volume} created")
                continue
        result[volume] = "reused"
        if not is_managed(found.attrs.get("Labels"), name):
            progress(f"volume {volume} exists without dindjobs labels: reusing it, `down --volumes` will keep it")
    return result


def _create_and_start(client: docker.DockerClient, spec: WrapperSpec, facts: EngineFacts,
                      progress: Progress, notes: list[str]) -> str:
    """Create and start the container; falls back from privileged to caps when the kernel needs it."""
    mode = spec.security
    try:
        _create_start(client, spec, facts, mode)
    except docker.errors.APIError as exc:
        if mode != "privileged" or CAPS_ERROR not in str(exc.explanation or exc):
            raise engine_error(exc) from None
        note = ("--privileged failed (\"unable to apply caps\": the kernel's capability bounding set "
                "lacks some) so the wrapper runs in caps mode: every grantable capability, "
                "unconfined seccomp/AppArmor/system paths, all devices")
        notes.append(note)
        mode = "caps"
        try:
            _create_start(client, spec, facts, mode)
        except docker.errors.APIError as exc2:
            raise engine_error(exc2) from None
    return mode


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


def _create_start(client: docker.DockerClient, spec: WrapperSpec, facts: EngineFacts, mode: str) -> None:
    api = client.api
    created = create_container(api, run_options(spec, facts, security=mode), spec.name)
    try:
        api.start(created["Id"])
    except docker.errors.APIError:
        # Nothing half-made stays behind: a created-but-unstartable container is removed.
        with contextlib.suppress(docker.errors.APIError):
            api.remove_container(created["Id"], force=True)
        raise


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclasses.dataclass
class DownResult:
    """What `down` did: container ``removed``/``absent``; each volume ``removed``/``kept``/``absent``."""

    name: str
    container: str
    volumes: dict[str, str]
    password_file: str | None = None  # "removed <path>" when the generated password was forgotten


def down(client: docker.DockerClient, name: str, remove_volumes: bool = False,
         progress: Progress = no_progress, stop_timeout: int = STOP_TIMEOUT,
         forget: Path | None = None) -> DownResult:
    """Stop the wrapper gracefully and remove it; with ``remove_volumes``, remove our labelled volumes.

    ``forget``: a state file (the generated admin password) deleted once the volumes are gone,
    since a fresh Jenkins home gets a fresh password.
    """
    wrapper = Wrapper(client, name)
    container = wrapper.container()
    state = "absent"
    if container is not None:
        if not is_managed(container.labels, name):
            raise WrapperError(f"container {name} is not managed by dindjobs: leaving it alone")
        progress(f"stopping wrapper {name} (up to {stop_timeout}s for Jenkins, then the nested daemon)")
        wrapper.stop(timeout=stop_timeout)
        with engine_errors():
            container.remove(v=False)
        state = "removed"
    volumes = {}
    for volume_name in wrapper.volume_names:
        with engine_errors():
            try:
                volume = client.volumes.get(volume_name)
            except docker.errors.NotFound:
                volumes[volume_name] = "absent"
                continue
            if not remove_volumes:
                volumes[volume_name] = "kept"
            elif not is_managed(volume.attrs.get("Labels"), name):
                volumes[volume_name] = "kept (not created by dindjobs)"
            else:
                volume.remove()
                volumes[volume_name] = "removed"
                progress(f"volume {volume_name} removed")
    result = DownResult(name, state, volumes)
    if remove_volumes and forget is not None and "kept" not in " ".join(volumes.values()):
        if forget.exists():
            forget.unlink()
            result.password_file = f"removed {forget}"
        with contextlib.suppress(OSError):  # the wrapper's state directory, when nothing else is left in it
            forget.parent.rmdir()
    return result


def status(client: docker.DockerClient, name: str, http_timeout: float = 5.0) -> dict[str, object]:
    """Container state and health, security mode, URL, volumes with sizes, and both halves' reachability."""
    wrapper = Wrapper(client, name)
    container = wrapper.container()
    report: dict[str, object] = {"name": name, "managed": False, "state": "absent", "health": "absent",
                                 "security": None, "network": None, "url": None, "image": None}
    if container is not None:
        state = container.attrs.get("State", {})
        report.update(
            managed=is_managed(container.labels, name),
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
    report["volumes"] = _volume_report(client, name)
    running = container is not None and report["state"] == "running" and report["managed"]
    nested: dict[str, object] = {"reachable": False, "id": None}
    if running:
        try:
            nested = {"reachable": True, "id": wrapper.nested_daemon_id()}
        except WrapperError as exc:
            nested["error"] = exc.message
    report["nested_daemon"] = nested
    report["jenkins"] = probe_http(str(report["url"]), http_timeout) if running and report["url"] else {"reachable": False}
    return report


def _volume_report(client: docker.DockerClient, name: str) -> list[dict[str, object]]:
    with engine_errors():
        usage = {v["Name"]: (v.get("UsageData") or {}).get("Size") for v in client.df().get("Volumes") or []}
        rows = []
        for volume_name in volume_names(name):
            try:
                volume = client.volumes.get(volume_name)
            except docker.errors.NotFound:
                rows.append({"name": volume_name, "exists": False, "managed": False, "size": None})
                continue
            size = usage.get(volume_name)
            rows.append({"name": volume_name, "exists": True, "managed": is_managed(volume.attrs.get("Labels"), name),
                         "size": size if size is not None and size >= 0 else None})
    return rows


def probe_http(url: str, timeout: float = 5.0) -> dict[str, object]:
    """A plain HTTP GET of Jenkins' login page: reachable (any HTTP answer) and the status code."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/login", timeout=timeout) as response:  # noqa: S310
            return {"reachable": True, "status": response.status}
    except urllib.error.HTTPError as exc:
        return {"reachable": True, "status": exc.code}
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"reachable": False, "error": str(reason)}


def no_wrapper(name: str) -> WrapperError:
    """The one error for a wrapper that does not exist (status, logs and doctor exit 1 with it)."""
    return WrapperError(f"no wrapper named {name}", hint="start it with `dindjobs up`")


def logs(client: docker.DockerClient, name: str, follow: bool = False, tail: int | None = None) -> Iterator[bytes]:
    """The container's output (Jenkins and the nested daemon, stdout and stderr), streamed."""
    wrapper = Wrapper(client, name)
    container = wrapper.container()
    if container is None or not is_managed(container.labels, name):
        raise no_wrapper(name)
    with engine_errors():
        stream = container.logs(stdout=True, stderr=True, stream=True, follow=follow, tail="all" if tail is None else tail)
        yield from stream
