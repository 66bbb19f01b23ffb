"""Run the wrapper image in tests the way `dindjobs up` does.

Privileged when the engine allows it; where ``--privileged`` fails with "unable to apply caps"
(the kernel's bounding set lacks a capability Docker would grant), every capability but the
missing ones, unconfined seccomp/AppArmor/system paths and the device rule ``a *:* rwm``.
Host networking, named volumes with a unique prefix, the admin password bind-mounted read-only,
and ``--bridge=none --iptables=false`` for the nested daemon so it never touches the host.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
import uuid
from pathlib import Path

import docker.errors

from dindjobs.wrapper.spec import (
    ADMIN_ID,
    CAPABILITIES,
    DEFAULT_IMAGE,
    DOCKER_DATA,
    JENKINS_HOME,
    NO_BRIDGE_DOCKERD_ARGS,
    PASSWORD_TARGET,
    STOP_TIMEOUT,
    host_capabilities,
    security_host_config,
    volume_names,
)
from support.images import busybox_context
from support.net import free_port

REPO = Path(__file__).resolve().parents[2]
IMAGE = DEFAULT_IMAGE
# Capabilities by bit number up to CAP_AUDIT_READ: those Docker 20.10 knows by name.
KNOWN_TO_OLD_ENGINES = CAPABILITIES[:38]

_privileged_works: bool | None = None  # learnt once per session


def build_image(docker_host: str, offline: bool = True) -> str:
    """Build the wrapper image the way users do, ``make image [OFFLINE=1]`` (cached layers make
    a rebuild with unchanged inputs take seconds)."""
    env = dict(os.environ, DOCKER_HOST=docker_host)
    command = ["make", "-s", "image", f"OFFLINE={1 if offline else 0}"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"make image failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return IMAGE


def security_config(privileged: bool) -> dict:
    """HostConfig fields (Engine API names) of `dindjobs up`'s privileged or caps mode.

    The caps mode is up's own fragment with one difference in spelling: "ALL" minus what the
    bounding set lacks, instead of the list of present capabilities, because an older engine
    rejects names it does not know (CAP_BPF on 20.10). Both give the same set.
    """
    if privileged:
        return security_host_config("privileged")
    present = set(host_capabilities())
    config = security_host_config("caps")
    config["CapAdd"] = ["ALL"]
    config["CapDrop"] = [name for name in KNOWN_TO_OLD_ENGINES if f"CAP_{name}" not in present]
    return config


def host_config(client, privileged: bool, **kwargs) -> dict:
    """The full host config: host networking, mounts and the security mode."""
    config = client.api.create_host_config(network_mode="host", **kwargs)
    config.update(security_config(privileged))
    return config


@dataclasses.dataclass
class Wrapper:
    """A wrapper container started for a test, and everything created with it."""

    client: object
    container: object
    prefix: str
    port: int
    volumes: list[str]
    password_file: Path
    privileged: bool

    def exec(self, cmd: list[str] | str, user: str = "jenkins") -> tuple[int, str]:
        """Run ``cmd`` in the wrapper; exit code and combined output."""
        result = self.container.exec_run(cmd, user=user)
        return result.exit_code, result.output.decode(errors="replace")

    def logs(self) -> str:
        return self.container.logs().decode(errors="replace")

    def wait_nested_ready(self, timeout: float = 60.0) -> float:
        """Seconds until the nested daemon answers ``/_ping`` on its socket (polled from inside)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            self.container.reload()
            if self.container.status != "running":
                raise AssertionError(f"wrapper is {self.container.status}:\n{self.logs()[-3000:]}")
            code, out = self.exec(["curl", "-fsS", "--unix-socket", "/var/run/docker.sock", "http://localhost/_ping"])
            if code == 0 and out.strip() == "OK":
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"nested daemon not ready within {timeout}s:\n{self.logs()[-3000:]}")

    def wait_exit(self, timeout: float = 90.0) -> int:
        return self.container.wait(timeout=timeout)["StatusCode"]

    def remove(self) -> None:
        """Remove the container and the volumes created for it (and only those)."""
        if self.container is not None:
            try:
                self.container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for name in self.volumes:
            try:
                self.client.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        self.password_file.unlink(missing_ok=True)


def run_wrapper(
    client,
    tmp_dir: Path,
    *,
    image: str = IMAGE,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    password: str = "",
    jenkins_home: str | None = None,
    start: bool = True,
) -> Wrapper:
    """Create (and start) a wrapper like `dindjobs up`: privileged, else the explicit-caps mode.

    ``jenkins_home``: a host directory to bind-mount instead of the Jenkins home volume.
    """
    global _privileged_works
    prefix = f"djt-img-{uuid.uuid4().hex[:8]}"
    port = free_port()
    password = password or uuid.uuid4().hex
    password_file = tmp_dir / f"{prefix}-admin-password"
    # A trailing newline, as `echo > file` leaves: the entrypoint must strip it.
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    home_volume, data_volume = volume_names(prefix)
    volumes = [data_volume] if jenkins_home else [home_volume, data_volume]
    environment = {
        "DINDJOBS_DOCKERD_ARGS": " ".join(NO_BRIDGE_DOCKERD_ARGS),
        "JENKINS_HTTP_PORT": str(port),
        "JENKINS_HTTP_LISTEN_ADDRESS": "127.0.0.1",
        "JENKINS_ADMIN_ID": ADMIN_ID,
        "JENKINS_ADMIN_PASSWORD_FILE": PASSWORD_TARGET,
        **(env or {}),
    }
    bind_cfg = {
        jenkins_home or home_volume: {"bind": JENKINS_HOME, "mode": "rw"},
        data_volume: {"bind": DOCKER_DATA, "mode": "rw"},
        str(password_file): {"bind": PASSWORD_TARGET, "mode": "ro"},
    }

    def create(privileged: bool):
        created = client.api.create_container(
            image, command=command, environment=environment, host_config=host_config(client, privileged, binds=bind_cfg),
            name=prefix, stop_timeout=STOP_TIMEOUT, labels={"org.dindjobs.test": "image"},
        )
        return client.containers.get(created["Id"])

    privileged = _privileged_works is not False
    wrapper = Wrapper(client, None, prefix, port, volumes, password_file, privileged)
    try:
        wrapper.container = container = create(privileged)
    except docker.errors.APIError:
        wrapper.remove()  # named volumes may exist already
        raise
    if not start:
        return wrapper
    try:
        container.start()
        if privileged:
            _privileged_works = True
    except docker.errors.APIError as exc:
        if not privileged or "unable to apply caps" not in str(exc):
            wrapper.remove()
            raise
        _privileged_works = False
        container.remove(force=True)
        wrapper.container = create(False)
        wrapper.privileged = False
        wrapper.container.start()
    return wrapper


def busybox_tar() -> bytes:
    """Build context for the nested test image, unpacked under /tmp/ctx."""
    return busybox_context("ctx")
