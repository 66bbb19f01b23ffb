"""Facts for `dindjobs doctor`: gathered inside the wrapper (exec) and from Jenkins (HTTP).

Parsing is separate from gathering so it can be tested on recorded text. Nothing here prints
or keeps a secret: the default-password probe keeps only whether one worked.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dindjobs.backup.quietdown import check as quiet_down_state
from dindjobs.config import Secret, Settings
from dindjobs.errors import DockerEngineError, JenkinsAuthError, JenkinsError, WrapperError
from dindjobs.jenkins.client import Jenkins
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.spec import DOCKER_DATA, JENKINS_HOME, LABEL_URL

DEFAULT_PASSWORDS = ("admin", "password", "jenkins", "123456", "changeme", "secret")
PROBE_TIMEOUT = 5.0
# Prints each dockerd's NUL-separated argv as lines, one block per process, ended by "--".
DOCKERD_ARGV = ('for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = dockerd ] || continue; '
                'tr "\\0" "\\n" < "$p/cmdline"; echo --; done')


def parse_listening(text: str) -> list[tuple[str, int]]:
    """(address, port) of LISTEN sockets in ``/proc/net/tcp`` and ``tcp6`` text."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A" or ":" not in fields[1]:
            continue
        hex_addr, hex_port = fields[1].split(":")
        raw = bytes.fromhex(hex_addr)
        # The kernel prints each 32-bit word in host (little-endian) order.
        words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
        address = ipaddress.ip_address(words)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        found.append((str(address), int(hex_port, 16)))
    return found


def dockerd_hosts(argv: list[str]) -> list[str]:
    """The ``-H``/``--host`` values of a dockerd command line."""
    hosts = []
    for i, arg in enumerate(argv):
        if arg in ("-H", "--host") and i + 1 < len(argv):
            hosts.append(argv[i + 1])
        elif arg.startswith(("--host=", "-H=")):
            hosts.append(arg.split("=", 1)[1])
        elif arg.startswith("-H") and len(arg) > 2:
            hosts.append(arg[2:])
    return hosts




@dataclasses.dataclass
class JenkinsFacts:
    """What the HTTP probes found (None: could not tell)."""

    reachable: bool
    error: str | None = None
    use_security: bool | None = None  # from api/json with our credentials
    anonymous_read: bool | None = None  # anonymous GET api/json answered 200
    anonymous_config: list[str] = dataclasses.field(default_factory=list)  # jobs whose config.xml anonymous read
    strategy: str | None = None  # authorizationStrategy class from config.xml
    anonymous_grants: list[str] = dataclasses.field(default_factory=list)  # dangerous permissions of anonymous
    default_password: str | None = None  # which well-known password worked (never the real one otherwise)
    admin_id: str = "admin"
    server: str | None = None  # "Jenkins 2.580.2" or "dindjobs stand-in (Jenkins ... REST API)"




ANONYMOUS_PERMISSION = re.compile(
    r"<permission>(?:(?:USER|GROUP):)?(hudson\.model\.(?:Hudson\.Administer|Item\.(?:Build|Configure|Create|Delete)"
    r"|Hudson\.RunScripts|Computer\.\w+)|jenkins\.model\.Jenkins\.Manage):anonymous</permission>")


def parse_security_config(xml_text: str) -> tuple[bool | None, str | None, list[str]]:
    """(useSecurity, authorization strategy class, dangerous anonymous permissions) from config.xml."""
    use = re.search(r"<useSecurity>(true|false)</useSecurity>", xml_text)
    strategy = re.search(r"<authorizationStrategy class=\"([^\"]+)\"", xml_text)
    grants = sorted({m.group(1).rsplit(".", 2)[-2] + "/" + m.group(1).rsplit(".", 1)[-1]
                     for m in ANONYMOUS_PERMISSION.finditer(xml_text)})
    return (use.group(1) == "true") if use else None, strategy.group(1) if strategy else None, grants


@dataclasses.dataclass
class InsideFacts:
    """What commands inside the wrapper said (None: could not tell)."""

    dockerd_argv: list[list[str]] | None = None
    daemon_json: dict[str, Any] = dataclasses.field(default_factory=dict)
    plain_ping: dict[str, bool] = dataclasses.field(default_factory=dict)
    listening: list[tuple[str, int]] | None = None
    data_fstype: str | None = None
    storage_driver: str | None = None
    config_xml: str | None = None


def parse_argv_blocks(text: str) -> list[list[str]]:
    """The output of :data:`DOCKERD_ARGV` as one argv per process."""
    blocks, current = [], []
    for line in text.splitlines():
        if line == "--":
            if current:
                blocks.append(current)
            current = []
        elif line:
            current.append(line)
    return blocks


def _plain_url(host: str) -> str:
    address = host.split("://", 1)[-1]
    hostpart, _, port = address.rpartition(":")
    if hostpart in ("", "0.0.0.0", "[::]", "::"):
        hostpart = "127.0.0.1"
    return f"http://{hostpart}:{port or 2375}/_ping"


def gather_inside(wrapper: Wrapper) -> InsideFacts:
    """Run the few read-only commands doctor needs inside the running wrapper (as root)."""
    facts = InsideFacts()

    def run(*cmd: str) -> str | None:
        try:
            code, out = wrapper.audit_exec(list(cmd))
        except (WrapperError, DockerEngineError):
            return None
        return out if code == 0 else None

    argv = run("sh", "-c", DOCKERD_ARGV)
    facts.dockerd_argv = parse_argv_blocks(argv) if argv is not None else None
    daemon_json = run("cat", "/etc/docker/daemon.json")
    if daemon_json:
        try:
            facts.daemon_json = json.loads(daemon_json)
        except ValueError:
            facts.daemon_json = {}
    hosts = [h for a in facts.dockerd_argv or [] for h in dockerd_hosts(a)] + list(facts.daemon_json.get("hosts") or [])
    for host in hosts:
        if host.startswith("tcp://") or "://" not in host:
            out = run("curl", "-s", "--max-time", "3", _plain_url(host))
            facts.plain_ping[host] = (out or "").strip() == "OK"
    tcp = run("sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null")
    facts.listening = parse_listening(tcp) if tcp is not None else None
    fstype = run("stat", "-f", "-c", "%T", DOCKER_DATA)
    facts.data_fstype = fstype.strip() if fstype else None
    driver = run("docker", "info", "--format", "{{.Driver}}")
    facts.storage_driver = driver.strip().splitlines()[-1] if driver and driver.strip() else None
    facts.config_xml = run("cat", f"{JENKINS_HOME}/config.xml")
    return facts


def gather_jenkins(url: str, settings: Settings, admin_id: str, config_xml: str | None) -> JenkinsFacts:
    """Probe Jenkins at ``url``: anonymously, with ``settings``' credentials, and with defaults."""
    facts = JenkinsFacts(reachable=True, admin_id=admin_id)
    anonymous = Jenkins(Settings(url=url, timeout=PROBE_TIMEOUT), retries=0)
    try:
        jobs = anonymous.get_json("api/json?tree=jobs[name]", what="the Jenkins root", retries=0).get("jobs") or []
        facts.anonymous_read = True
        for job in jobs[:3]:
            try:
                anonymous.get_job_config(job["name"])
                facts.anonymous_config.append(job["name"])
            except JenkinsError:
                pass
    except JenkinsAuthError:
        facts.anonymous_read = False
    except JenkinsError as exc:
        facts.reachable, facts.error = False, exc.one_line()
        return facts
    finally:
        anonymous.close()
    facts.server = anonymous.server_label
    if settings.credential is not None:
        client = Jenkins(dataclasses.replace(settings, url=url, timeout=PROBE_TIMEOUT), retries=0)
        try:
            facts.use_security = client.get_json("api/json?tree=useSecurity", what="the Jenkins root",
                                                 retries=0).get("useSecurity")
        except JenkinsError:
            pass
        finally:
            client.close()
    if config_xml:
        use, facts.strategy, facts.anonymous_grants = parse_security_config(config_xml)
        if facts.use_security is None:
            facts.use_security = use
    for candidate in dict.fromkeys((*DEFAULT_PASSWORDS, admin_id)):
        probe = Jenkins(Settings(url=url, user=admin_id, password=Secret(candidate, "doctor"), timeout=PROBE_TIMEOUT),
                        retries=0)
        try:
            if not probe.whoami(retries=0).get("anonymous", True):
                facts.default_password = "a well-known default"
                break
        except JenkinsError:
            continue
        finally:
            probe.close()
    return facts


def env_of(attrs: Mapping[str, Any]) -> dict[str, str]:
    """A container's environment (from its inspect data) as a dict."""
    return dict(str(e).partition("=")[::2] for e in (attrs.get("Config") or {}).get("Env") or [])


def jenkins_url(attrs: Mapping[str, Any]) -> str | None:
    """Where Jenkins answers from this machine: the recorded URL, else the port it uses."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    if labels.get(LABEL_URL):
        return labels[LABEL_URL]
    if (attrs.get("HostConfig") or {}).get("NetworkMode") == "host":
        return f"http://127.0.0.1:{env_of(attrs).get('JENKINS_HTTP_PORT', '8080')}/"
    for binding in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).get("8080/tcp") or []:
        ip = binding.get("HostIp") or "127.0.0.1"
        return f"http://{'127.0.0.1' if ip in ('0.0.0.0', '::') else ip}:{binding.get('HostPort')}/"
    return None


INSIDE_FACTS = tuple(f.name for f in dataclasses.fields(InsideFacts))
RUNNING_FACTS = frozenset({*INSIDE_FACTS, "jenkins", "quiet_down"})  # these need a running wrapper


class Facts:
    """The facts checks ask for by name, each gathered once, on first use.

    ``attrs`` (the container's inspect data), ``name`` (the wrapper's), ``labels_of`` (a volume's
    labels, None when absent), ``host_sockets``; from inside the running wrapper, the fields of
    :class:`InsideFacts`; ``jenkins`` (:class:`JenkinsFacts`) and ``quiet_down``
    (:class:`dindjobs.backup.quietdown.QuietDown`, never undone by doctor).
    """

    def __init__(self, wrapper: Wrapper, settings: Settings, attrs: Mapping[str, Any],
                 host_sockets: Iterable[str]) -> None:
        self._wrapper, self._settings = wrapper, settings
        self._known: dict[str, Any] = {"attrs": attrs, "name": wrapper.name, "labels_of": wrapper.volume_labels,
                                       "host_sockets": tuple(host_sockets)}

    def __getitem__(self, name: str) -> Any:
        if name not in self._known:
            if name in INSIDE_FACTS:
                inside = gather_inside(self._wrapper)
                self._known.update({field: getattr(inside, field) for field in INSIDE_FACTS})
            elif name == "jenkins":
                self._known["jenkins"] = self._jenkins()
            elif name == "quiet_down":
                self._known["quiet_down"] = quiet_down_state(self._wrapper, self._settings, undo=False)
            else:
                raise KeyError(f"doctor has no fact named {name!r}")
        return self._known[name]

    def _jenkins(self) -> JenkinsFacts:
        attrs = self["attrs"]
        url = jenkins_url(attrs)
        admin_id = env_of(attrs).get("JENKINS_ADMIN_ID") or "admin"
        if not url:
            return JenkinsFacts(reachable=False, error="no Jenkins URL known for this container", admin_id=admin_id)
        return gather_jenkins(url, self._settings, admin_id, self["config_xml"])
