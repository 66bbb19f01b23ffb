"""What a wrapper container looks like: pure data, no engine calls, so it is easy to test and reuse.

:func:`run_options` turns a :class:`WrapperSpec` (what the user asked for) and
:class:`EngineFacts` (what the engine can do) into the container-create body of the Docker
Engine API. It is the one place that decides security, networking, mounts and environment;
``wrapper.py`` sends it, and tests may send it too.

The body is raw Engine API JSON rather than docker-py keyword arguments on purpose: the API has
no ``systempaths=unconfined`` security option (the docker CLI translates it client-side into
empty ``MaskedPaths``/``ReadonlyPaths``; engines answer 500 "invalid --security-opt"), and
docker-py's high-level ``run`` cannot set ``StopTimeout``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from dindjobs.errors import ConfigError, DockerEngineError

DEFAULT_IMAGE = "dindjobs-wrapper:latest"
OFFLINE_BASE_IMAGE = "dindjobs-offline-base:trixie"
DEFAULT_PORT = 8080
DEFAULT_BIND = "127.0.0.1"
JENKINS_HOME = "/var/jenkins_home"
DOCKER_DATA = "/var/lib/docker"
PASSWORD_TARGET = "/run/secrets/jenkins-admin-password"
ADMIN_ID = "admin"
STOP_TIMEOUT = 60
SYSBOX_RUNTIME = "sysbox-runc"

SECURITY_MODES = ("privileged", "caps", "sysbox")
NETWORK_MODES = ("auto", "host", "bridge")
# Nested dockerd flags that keep it away from the host's network configuration.
NO_BRIDGE_DOCKERD_ARGS = ("--bridge=none", "--iptables=false", "--ip6tables=false")

LABEL_MANAGED = "io.dindjobs.managed"
LABEL_NAME = "io.dindjobs.name"
LABEL_ROLE = "io.dindjobs.role"
LABEL_SETTINGS = "io.dindjobs.settings"
LABEL_SECURITY = "io.dindjobs.security"
LABEL_NETWORK = "io.dindjobs.network"
LABEL_URL = "io.dindjobs.url"

# Linux capabilities by bit number (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)


def capabilities_from_status(status_text: str) -> tuple[str, ...]:
    """The named capabilities in the ``CapBnd`` mask of a ``/proc/<pid>/status`` text."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split(":", 1)[1].strip(), 16)
            return tuple(f"CAP_{name}" for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1)
    raise ValueError("no CapBnd line in the status text")


def host_capabilities(status_path: Path = Path("/proc/self/status")) -> tuple[str, ...]:
    """Capabilities the local kernel lets containers have (our own bounding set), else all known."""
    try:
        return capabilities_from_status(status_path.read_text())
    except (OSError, ValueError):
        return tuple(f"CAP_{name}" for name in CAPABILITIES)


@dataclasses.dataclass(frozen=True)
class EngineFacts:
    """What the engine offers that changes how the wrapper must run."""

    has_bridge: bool
    runtimes: frozenset[str] = frozenset({"runc"})
    capabilities: tuple[str, ...] = dataclasses.field(
        default_factory=lambda: tuple(f"CAP_{n}" for n in CAPABILITIES)
    )
    local: bool = True  # the engine runs on this machine (bind mounts of our files work)


@dataclasses.dataclass(frozen=True)
class WrapperSpec:
    """What the user asked `dindjobs up` for."""

    name: str = "dindjobs"
    image: str = DEFAULT_IMAGE
    port: int = DEFAULT_PORT
    bind: str = DEFAULT_BIND
    network: str = "auto"
    security: str = "privileged"
    dockerd_args: tuple[str, ...] = ()
    password_file: Path | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ConfigError(f"unknown security mode {self.security!r} (one of {', '.join(SECURITY_MODES)})")
        if self.network not in NETWORK_MODES:
            raise ConfigError(f"unknown network mode {self.network!r} (one of {', '.join(NETWORK_MODES)})")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be between 1 and 65535, got {self.port}")
        if not self.name or not all(c.isalnum() or c in "_.-" for c in self.name) or not self.name[0].isalnum():
            raise ConfigError(f"wrapper name {self.name!r} must be letters, digits, '_', '.' or '-'")

    @property
    def jenkins_home_volume(self) -> str:
        return volume_names(self.name)[0]

    @property
    def docker_data_volume(self) -> str:
        return volume_names(self.name)[1]


def volume_names(name: str) -> tuple[str, str]:
    """The Jenkins-home and nested-daemon-data volume names of wrapper ``name``."""
    return f"{name}-jenkins-home", f"{name}-docker-data"


def managed_labels(name: str, role: str) -> dict[str, str]:
    """Labels that mark a container or volume as created by dindjobs for wrapper ``name``."""
    return {LABEL_MANAGED: "true", LABEL_NAME: name, LABEL_ROLE: role}


def is_managed(labels: Mapping[str, str] | None, name: str) -> bool:
    """True when ``labels`` say dindjobs created this object for wrapper ``name``."""
    labels = labels or {}
    return labels.get(LABEL_MANAGED) == "true" and labels.get(LABEL_NAME) == name


def effective_network(spec: WrapperSpec, facts: EngineFacts) -> str:
    """``host`` or ``bridge``: what the container will really use on this engine."""
    if spec.network == "host" or (spec.network == "auto" and not facts.has_bridge):
        return "host"
    if not facts.has_bridge:
        raise DockerEngineError(
            "the engine has no default bridge network (it runs with --bridge=none)",
            hint="use --network host or --network auto",
        )
    return "bridge"


def security_host_config(mode: str, capabilities: Iterable[str] = ()) -> dict[str, object]:
    """The HostConfig fragment for a security mode (Engine API field names)."""
    if mode == "privileged":
        return {"Privileged": True}
    if mode == "caps":
        # Everything --privileged gives that a container can have without the missing caps:
        # the caps themselves, no seccomp/AppArmor filter, unmasked /proc and /sys, all devices.
        return {
            "CapAdd": list(capabilities),
            "SecurityOpt": ["seccomp=unconfined", "apparmor=unconfined"],
            "MaskedPaths": [],
            "ReadonlyPaths": [],
            "DeviceCgroupRules": ["a *:* rwm"],
        }
    if mode == "sysbox":
        return {"Runtime": SYSBOX_RUNTIME}
    raise ConfigError(f"unknown security mode {mode!r}")


def url_of(spec: WrapperSpec) -> str:
    """The URL Jenkins answers on, as seen from this machine."""
    host = "127.0.0.1" if spec.bind in ("0.0.0.0", "", "::") else spec.bind
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{spec.port}/"


def recorded_settings(spec: WrapperSpec, network: str) -> dict[str, object]:
    """The settings stored on the container, compared by a later `up` for idempotency."""
    return {
        "image": spec.image,
        "port": spec.port,
        "bind": spec.bind,
        "network": network,
        "security": spec.security,
        "dockerd_args": list(spec.dockerd_args),
        "password_file": str(spec.password_file) if spec.password_file else None,
    }


def settings_differences(recorded: Mapping[str, object], wanted: Mapping[str, object], effective_security: str | None = None) -> list[str]:
    """Human-readable differences ``key: running X, asked Y``; a fallback to caps is no difference."""
    differences = []
    for key in sorted(set(recorded) | set(wanted)):
        old, new = recorded.get(key), wanted.get(key)
        if key == "security" and new in (old, effective_security):
            continue
        if old != new:
            differences.append(f"{key}: running {_show(old)}, asked {_show(new)}")
    return differences


def _show(value: object) -> str:
    if isinstance(value, list):
        return "'" + " ".join(map(str, value)) + "'" if value else "none"
    return "none" if value is None else str(value)


def run_options(spec: WrapperSpec, facts: EngineFacts, security: str | None = None) -> dict[str, object]:
    """The Engine API create body (``Config`` with ``HostConfig``) for the wrapper container.

    ``security`` overrides ``spec.security`` (used for the privileged-to-caps fallback).
    Secrets never go in here: the password is a read-only file mount.
    """
    mode = security or spec.security
    network = effective_network(spec, facts)
    if mode == "sysbox":
        if SYSBOX_RUNTIME not in facts.runtimes:
            raise DockerEngineError(
                f"the engine has no {SYSBOX_RUNTIME} runtime",
                hint="install Sysbox on the engine host, or use --security privileged",
            )
        if network == "host":
            raise DockerEngineError(
                "Sysbox containers cannot use host networking, and this engine has no bridge network",
                hint="start the engine with a bridge, or use --security privileged",
            )
    dockerd_args = list(spec.dockerd_args)
    if network == "host":
        dockerd_args = [*NO_BRIDGE_DOCKERD_ARGS, *[a for a in dockerd_args if a not in NO_BRIDGE_DOCKERD_ARGS]]
    env = {
        "JENKINS_HTTP_PORT": str(spec.port if network == "host" else DEFAULT_PORT),
        "JENKINS_ADMIN_ID": ADMIN_ID,
        "JENKINS_ADMIN_PASSWORD_FILE": PASSWORD_TARGET,
    }
    if network == "host":
        # Sharing the host's network namespace: Jenkins itself must listen on loopback only
        # (jenkins.war and the stand-in listen on every address by default).
        env["JENKINS_HTTP_LISTEN_ADDRESS"] = spec.bind
    if dockerd_args:
        env["DINDJOBS_DOCKERD_ARGS"] = " ".join(dockerd_args)

    mounts: list[dict[str, object]] = [
        {"Type": "volume", "Source": spec.jenkins_home_volume, "Target": JENKINS_HOME},
        {"Type": "volume", "Source": spec.docker_data_volume, "Target": DOCKER_DATA},
    ]
    if spec.password_file is not None:
        mounts.append({"Type": "bind", "Source": str(spec.password_file), "Target": PASSWORD_TARGET, "ReadOnly": True})

    host_config: dict[str, object] = {
        "Mounts": mounts,
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 0},
        **security_host_config(mode, facts.capabilities),
    }
    config: dict[str, object] = {
        "Image": spec.image,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "StopTimeout": STOP_TIMEOUT,
        "Labels": {
            **managed_labels(spec.name, "wrapper"),
            LABEL_SETTINGS: json.dumps(recorded_settings(spec, network), sort_keys=True),
            LABEL_SECURITY: mode,
            LABEL_NETWORK: network,
            LABEL_URL: url_of(spec),
        },
        "HostConfig": host_config,
    }
    if network == "host":
        host_config["NetworkMode"] = "host"
    else:
        port_key = f"{DEFAULT_PORT}/tcp"
        config["ExposedPorts"] = {port_key: {}}
        host_config["NetworkMode"] = "bridge"
        host_config["PortBindings"] = {port_key: [{"HostIp": spec.bind, "HostPort": str(spec.port)}]}
    return config
