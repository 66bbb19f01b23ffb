"""`dindjobs doctor`: a security and health audit of a wrapper, each check ok / warn / fail with a fix.

Facts come from three places: the container's inspect data (mounts, security options,
environment, published ports), commands run inside the wrapper (the nested dockerd's command
line, listening sockets, file systems, ``docker info``) and Jenkins itself over HTTP (with our
credentials, anonymously, and with well-known default passwords). The check functions are pure:
they take those facts and return a :class:`Check`, so each one is unit-tested on its own. Each is
registered with :func:`check`, naming the facts it needs; :func:`audit` gathers only those.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dindjobs.backup.quietdown import QuietDown
from dindjobs.config import Settings
from dindjobs.doctor.facts import DEFAULT_PASSWORDS, RUNNING_FACTS, Facts, JenkinsFacts, dockerd_hosts, env_of
from dindjobs.wrapper.container import Wrapper, is_running, no_wrapper
from dindjobs.wrapper.spec import (
    DEFAULT_BIND,
    DOCKER_DATA,
    JENKINS_HOME,
    LABEL_SETTINGS,
    SYSBOX_RUNTIME,
    is_managed,
    volume_names,
)

OK, WARN, FAIL = "ok", "warn", "fail"
HOST_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|CREDENTIAL", re.IGNORECASE)
ROOT_FIX = "use --security sysbox where Sysbox is installed (root in the wrapper is then not root on the host)"


@dataclasses.dataclass
class Check:
    """One audited property: ``status`` is ok, warn or fail; ``fix`` says what to do when not ok."""

    id: str
    status: str
    detail: str
    fix: str | None = None


def _ok(check_id: str, detail: str) -> Check:
    return Check(check_id, OK, detail)


@dataclasses.dataclass(frozen=True)
class Registered:
    """A check :func:`audit` runs: its id, the facts it needs (names in :class:`Facts`), the function."""

    id: str
    needs: tuple[str, ...]
    run: Callable[..., Check]


CHECKS: list[Registered] = []  # in the order audit runs and reports them


def check(check_id: str, *needs: str) -> Callable[[Callable[..., Check]], Callable[..., Check]]:
    """Register the decorated function as check ``check_id``: :func:`audit` calls it with the facts
    named in ``needs``, in that order. A check needing a fact from inside the wrapper or from
    Jenkins is reported as skipped when the wrapper is not running."""
    def register(func: Callable[..., Check]) -> Callable[..., Check]:
        CHECKS.append(Registered(check_id, needs, func))
        return func
    return register


# --- checks on the container's inspect data ------------------------------------------------

@check("wrapper-running", "attrs")
def check_running(attrs: Mapping[str, Any]) -> Check:
    """The wrapper runs and its healthcheck passes."""
    state = attrs.get("State") or {}
    health = (state.get("Health") or {}).get("Status", "none")
    if state.get("Status") != "running":
        return Check("wrapper-running", FAIL, f"the wrapper is {state.get('Status')}: the checks inside it were skipped",
                     "start it with `dindjobs up`")
    if health == "unhealthy":
        return Check("wrapper-running", FAIL, "running but unhealthy (Jenkins or the nested daemon does not answer)",
                     "see `dindjobs logs`")
    if health == "starting":
        return Check("wrapper-running", WARN, "running, healthcheck still starting", "run doctor again in a minute")
    return _ok("wrapper-running", f"running, health {health}")


@check("host-docker-socket", "attrs", "host_sockets")
def check_host_socket(attrs: Mapping[str, Any], host_sockets: Iterable[str] = HOST_SOCKETS) -> Check:
    """The host engine's socket (or a directory holding it) is not mounted into the wrapper."""
    sockets = {s.rstrip("/") for s in host_sockets}
    parents = {s.rsplit("/", 1)[0] for s in sockets} | {"/var/run", "/run"}
    found = []
    for mount in attrs.get("Mounts") or []:
        source = str(mount.get("Source") or "").rstrip("/")
        if mount.get("Type") == "bind" and (source in sockets or source in parents or source == ""):
            found.append(f"{source or '/'} -> {mount.get('Destination')}")
    if found:
        return Check("host-docker-socket", FAIL,
                     f"the host's Docker socket is mounted ({', '.join(found)}): any job can control the host "
                     "engine, which is root on the host, and the nesting protects nothing",
                     "remove the mount; jobs use the nested daemon (recreate with `dindjobs down` and `dindjobs up`)")
    return _ok("host-docker-socket", "the host's Docker socket is not mounted")


@check("security-mode", "attrs")
def check_security_mode(attrs: Mapping[str, Any]) -> Check:
    """Privileged, caps or sysbox, said plainly: the first two are as good as host root."""
    host = attrs.get("HostConfig") or {}
    if host.get("Runtime") == SYSBOX_RUNTIME:
        return _ok("security-mode", "sysbox: the wrapper runs in a user namespace; its root is not root on the host")
    if host.get("Privileged"):
        return Check("security-mode", WARN, "privileged: root in the wrapper, and any job that reaches its Docker "
                     "daemon, is equal to root on the host", ROOT_FIX)
    caps = {str(c).upper().removeprefix("CAP_") for c in host.get("CapAdd") or []}
    if "ALL" in caps or "SYS_ADMIN" in caps:
        return Check("security-mode", WARN, f"caps: {'all' if 'ALL' in caps else len(caps)} added capabilities "
                     "including SYS_ADMIN, seccomp and AppArmor off, every device allowed: in practice equal "
                     "to root on the host, like privileged", ROOT_FIX)
    return _ok("security-mode", "unprivileged: default capabilities (a nested daemon cannot run like this)")


@check("secrets-in-environment", "attrs")
def check_environment(attrs: Mapping[str, Any]) -> Check:
    """No password or token in the container's environment (``docker inspect`` shows it to anyone)."""
    names = []
    for item in (attrs.get("Config") or {}).get("Env") or []:
        name, _, value = str(item).partition("=")
        if SECRET_NAME.search(name) and not name.upper().endswith(("_FILE", "_PATH", "_DIR")) and value:
            names.append(name)
    if names:
        return Check("secrets-in-environment", FAIL,
                     f"{', '.join(sorted(names))} in the container's environment: `docker inspect` shows the value "
                     "to everyone who can reach the engine", "pass a file instead (JENKINS_ADMIN_PASSWORD_FILE); "
                     "`dindjobs up` mounts one read-only")
    return _ok("secrets-in-environment", "no password or token in the container's environment")


def _volume_of(attrs: Mapping[str, Any], target: str) -> Mapping[str, Any] | None:
    return next((m for m in attrs.get("Mounts") or [] if m.get("Destination") == target), None)


@check("volumes", "attrs", "name", "labels_of")
def check_volumes(attrs: Mapping[str, Any], name: str, labels_of: Callable[[str], Mapping[str, str] | None]) -> Check:
    """Both state directories are on named volumes labelled as this wrapper's."""
    problems, warnings = [], []
    for target, wanted in zip((JENKINS_HOME, DOCKER_DATA), volume_names(name), strict=True):
        mount = _volume_of(attrs, target)
        if mount is None:
            problems.append(f"{target} is not a volume: its data is in the container layer and dies with it")
        elif mount.get("Type") == "bind":
            warnings.append(f"{target} is a bind mount of {mount.get('Source')} (not managed by dindjobs)")
        elif re.fullmatch(r"[0-9a-f]{64}", str(mount.get("Name") or "")):
            problems.append(f"{target} is on an anonymous volume, easily lost with `docker rm -v`")
        elif mount.get("Name") != wanted:
            warnings.append(f"{target} is on volume {mount.get('Name')}, not {wanted}")
        elif not is_managed(labels_of(wanted), name):
            warnings.append(f"volume {wanted} has no dindjobs labels")
    if problems:
        return Check("volumes", FAIL, "; ".join(problems + warnings),
                     f"recreate with `dindjobs up`, which mounts named volumes {' and '.join(volume_names(name))}")
    if warnings:
        return Check("volumes", WARN, "; ".join(warnings), "use the volumes `dindjobs up` creates")
    return _ok("volumes", f"named, labelled volumes {' and '.join(volume_names(name))}")


# --- checks on facts from inside the wrapper -------------------------------------------------

def _is_tcp(host: str) -> bool:
    return host.startswith("tcp://") or ("://" not in host and host not in ("",))


@check("nested-daemon-tcp", "dockerd_argv", "daemon_json", "plain_ping")
def check_nested_tcp(cmdlines: list[list[str]] | None, daemon_json: Mapping[str, Any], answers: Mapping[str, bool]) -> Check:
    """The nested daemon listens on TCP only with mutual TLS. ``answers``: tcp host -> plain HTTP
    ``/_ping`` answered."""
    if not cmdlines:
        return Check("nested-daemon-tcp", WARN, "no nested dockerd process found", "see `dindjobs logs`")
    problems, tls_hosts = [], []
    for argv in cmdlines:
        hosts = dockerd_hosts(argv) + list(daemon_json.get("hosts") or [])
        verify = "--tlsverify" in argv or any(a.startswith("--tlsverify=true") for a in argv) or daemon_json.get("tlsverify")
        for host in filter(_is_tcp, hosts):
            if not verify:
                evidence = " (it answered a plain HTTP ping)" if answers.get(host) else ""
                problems.append(f"{host} without TLS client verification{evidence}")
            else:
                tls_hosts.append(host)
    if problems:
        return Check("nested-daemon-tcp", FAIL,
                     f"the nested daemon listens on {', '.join(problems)}: whoever reaches it is root in the wrapper",
                     "remove the tcp host; for remote use set DINDJOBS_DOCKER_TLS=1 (mutual TLS on 2376)")
    if tls_hosts:
        return _ok("nested-daemon-tcp", f"TCP only with mutual TLS ({', '.join(tls_hosts)})")
    return _ok("nested-daemon-tcp", "the nested daemon listens on its unix socket only")


@check("docker-data-filesystem", "data_fstype")
def check_data_fs(fstype: str | None) -> Check:
    """/var/lib/docker is not on overlayfs (where the nested overlay2 cannot work)."""
    if fstype is None:
        return Check("docker-data-filesystem", WARN, f"could not read the file system of {DOCKER_DATA}", None)
    if fstype in ("overlayfs", "overlay"):
        return Check("docker-data-filesystem", FAIL, f"{DOCKER_DATA} is on overlayfs (the container layer): the nested "
                     "daemon must fall back to vfs, and its data dies with the container", "mount a volume there "
                     "(`dindjobs up` does)")
    return _ok("docker-data-filesystem", f"{DOCKER_DATA} is on {fstype}")


@check("nested-storage-driver", "storage_driver")
def check_storage_driver(driver: str | None) -> Check:
    """The nested daemon does not use vfs (a full copy of every layer)."""
    if not driver:
        return Check("nested-storage-driver", WARN, "the nested daemon did not say its storage driver",
                     "see `dindjobs status`")
    if driver == "vfs":
        return Check("nested-storage-driver", FAIL, "the nested daemon uses vfs: every layer is a full copy (slow, "
                     "huge)", f"put {DOCKER_DATA} on a volume so overlay2 works, and unset DINDJOBS_ALLOW_VFS")
    return _ok("nested-storage-driver", f"the nested daemon uses {driver}")


def expected_bind(attrs: Mapping[str, Any]) -> tuple[str, bool]:
    """The address the user asked Jenkins to be published on, and whether it was recorded."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    try:
        bind = json.loads(labels.get(LABEL_SETTINGS, "{}")).get("bind")
    except ValueError:
        bind = None
    return (bind, True) if bind else (DEFAULT_BIND, False)


def _same_address(actual: str, wanted: str) -> bool:
    if actual in ("", "0.0.0.0", "::"):
        return wanted in ("", "0.0.0.0", "::")
    try:
        return ipaddress.ip_address(actual) == ipaddress.ip_address(wanted)
    except ValueError:
        return actual == wanted


@check("published-address", "attrs", "listening")
def check_published(attrs: Mapping[str, Any], listening: list[tuple[str, int]] | None) -> Check:
    """Jenkins is reachable only on the address asked for (published ports, or listening sockets
    under host networking, from ``/proc/net/tcp*``)."""
    bind, recorded = expected_bind(attrs)
    note = "" if recorded else f" (no recorded setting: assuming {bind})"
    host = attrs.get("HostConfig") or {}
    wrong = []
    if host.get("NetworkMode") == "host":
        port = int(env_of(attrs).get("JENKINS_HTTP_PORT", "8080"))
        if listening is None:
            return Check("published-address", WARN, "could not read the listening sockets", "run doctor as root")
        addresses = [addr for addr, p in listening if p == port]
        if not addresses:
            return Check("published-address", WARN, f"nothing listens on port {port} (host networking){note}",
                         "is Jenkins running? see `dindjobs logs`")
        wrong = [f"{a}:{port}" for a in addresses if not _same_address(a, bind)]
        where = f"listens on {', '.join(sorted(set(addresses)))} port {port} (host networking)"
    else:
        ports = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        bound = [(b.get("HostIp") or "0.0.0.0", b.get("HostPort"), key) for key, bs in ports.items() for b in bs or []]
        wrong = [f"{ip}:{hp} ({key})" for ip, hp, key in bound if not _same_address(ip, bind)]
        where = f"published on {', '.join(f'{ip}:{hp}' for ip, hp, _ in bound) or 'nothing'}"
    if wrong:
        return Check("published-address", FAIL, f"Jenkins is reachable on {', '.join(wrong)}, not only on {bind}{note}",
                     f"recreate with `dindjobs up --bind {bind}`")
    return _ok("published-address", f"{where}: only {bind}{note}")


# --- checks on Jenkins -------------------------------------------------------------------------

@check("jenkins-security", "jenkins")
def check_jenkins_security(facts: JenkinsFacts) -> Check:
    """Jenkins has a security realm on."""
    if not facts.reachable:
        return Check("jenkins-security", WARN, f"Jenkins did not answer: {facts.error}", "see `dindjobs logs`")
    if facts.use_security is False or (facts.strategy or "").endswith("AuthorizationStrategy$Unsecured"):
        return Check("jenkins-security", FAIL, "security is off: anyone who reaches Jenkins can run anything in "
                     "the wrapper", "enable a security realm (the image's JCasC does)")
    if facts.use_security is None and facts.anonymous_read is not False:
        return Check("jenkins-security", WARN, "could not confirm that security is on (no credentials?)",
                     "run doctor with the admin's credentials")
    where = f"{facts.server}: " if facts.server else ""
    return _ok("jenkins-security", where + "security realm on"
               + (f" ({facts.strategy.rsplit('.', 1)[-1]})" if facts.strategy else ""))


@check("jenkins-anonymous", "jenkins")
def check_anonymous(facts: JenkinsFacts) -> Check:
    """Anonymous users can neither configure nor build."""
    if not facts.reachable:
        return Check("jenkins-anonymous", WARN, "Jenkins did not answer", "see `dindjobs logs`")
    bad = list(facts.anonymous_grants)
    if facts.anonymous_config:
        bad.append(f"reads job configuration ({', '.join(facts.anonymous_config[:3])})")
    if bad:
        return Check("jenkins-anonymous", FAIL, f"anonymous users: {'; '.join(bad)}",
                     "grant anonymous nothing beyond Overall/Read (Manage Jenkins > Security)")
    if facts.anonymous_read:
        return Check("jenkins-anonymous", WARN, "anonymous users can read (Overall/Read), but not configure or build",
                     "deny anonymous read access unless it is meant")
    return _ok("jenkins-anonymous", "anonymous users get 403: they can neither read, configure nor build")


@check("admin-password", "jenkins")
def check_admin_password(facts: JenkinsFacts) -> Check:
    """The admin password is not a well-known default."""
    if not facts.reachable:
        return Check("admin-password", WARN, "Jenkins did not answer", "see `dindjobs logs`")
    if facts.default_password is not None:
        return Check("admin-password", FAIL, f"user {facts.admin_id!r} accepts a well-known default password",
                     "set a generated one: `dindjobs up` makes one in its state directory")
    return _ok("admin-password", f"user {facts.admin_id!r} accepts none of {len(DEFAULT_PASSWORDS)} well-known passwords")


@check("jenkins-quiet-down", "quiet_down")
def check_quiet_down(state: QuietDown) -> Check:
    """Jenkins in quiet-down starts no build: say so, and whose it is."""
    if state.quieting_down is None:
        return Check("jenkins-quiet-down", WARN, f"could not tell: {state.error or 'no answer'}", "see `dindjobs logs`")
    if not state.quieting_down:
        return _ok("jenkins-quiet-down", "not quieting down: builds start")
    if state.backup_pid is not None:
        return Check("jenkins-quiet-down", WARN, f"quieting down for the backup running as process {state.backup_pid}",
                     "wait for the backup to finish")
    if state.ours:
        return Check("jenkins-quiet-down", WARN, "quieting down, left on by a backup that was killed: no build starts",
                     "`dindjobs status` (or the next `backup` or `up`) cancels it")
    return Check("jenkins-quiet-down", WARN, "quieting down (not asked by dindjobs): no build starts",
                 "cancel it in Jenkins (Manage Jenkins > Cancel Shutdown, or POST /cancelQuietDown)")


# --- the audit ---------------------------------------------------------------------------------

def audit(wrapper: Wrapper, settings: Settings, host_sockets: Iterable[str] = HOST_SOCKETS) -> list[Check]:
    """Every registered check, in order. Checks that need a running wrapper are warnings when it is not."""
    container = wrapper.container()
    if container is None:
        raise no_wrapper(wrapper.name)
    facts = Facts(wrapper, settings, container.attrs, host_sockets)
    running = is_running(container)
    results = []
    for registered in CHECKS:
        if not running and RUNNING_FACTS.intersection(registered.needs):
            results.append(Check(registered.id, WARN, "skipped: the wrapper is not running",
                                 "start it, then run doctor again"))
        else:
            results.append(registered.run(*(facts[name] for name in registered.needs)))
    return results


def failed(checks: Iterable[Check]) -> list[Check]:
    """The checks that failed."""
    return [c for c in checks if c.status == FAIL]
