"""Each doctor check on inspect data and command output shaped like a real engine's."""

from __future__ import annotations

import json

import pytest

from dindjobs.backup.quietdown import QuietDown
from dindjobs.config import Settings
from dindjobs.doctor import checks
from dindjobs.doctor.checks import (
    FAIL,
    OK,
    WARN,
    Check,
    audit,
    check_admin_password,
    check_anonymous,
    check_data_fs,
    check_environment,
    check_host_socket,
    check_jenkins_security,
    check_nested_tcp,
    check_published,
    check_quiet_down,
    check_running,
    check_security_mode,
    check_storage_driver,
    check_volumes,
)
from dindjobs.doctor.facts import (
    JenkinsFacts,
    dockerd_hosts,
    jenkins_url,
    parse_argv_blocks,
    parse_listening,
    parse_security_config,
)
from dindjobs.wrapper.spec import LABEL_SETTINGS, LABEL_URL, managed_labels
from support.fakewrapper import FakeWrapper

NAME = "w1"


def attrs(**over) -> dict:
    base = {
        "State": {"Status": "running", "Health": {"Status": "healthy"}},
        "Config": {"Env": ["JENKINS_HTTP_PORT=18080", "JENKINS_ADMIN_ID=admin",
                           "JENKINS_ADMIN_PASSWORD_FILE=/run/secrets/jenkins-admin-password"],
                   "Labels": {LABEL_SETTINGS: json.dumps({"bind": "127.0.0.1"}), LABEL_URL: "http://127.0.0.1:18080/"}},
        "HostConfig": {"NetworkMode": "host", "CapAdd": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]},
        "Mounts": [
            {"Type": "volume", "Name": f"{NAME}-jenkins-home", "Source": "/x", "Destination": "/var/jenkins_home"},
            {"Type": "volume", "Name": f"{NAME}-docker-data", "Source": "/y", "Destination": "/var/lib/docker"},
            {"Type": "bind", "Source": "/root/.local/state/dindjobs/w1/admin-password",
             "Destination": "/run/secrets/jenkins-admin-password"},
        ],
        "NetworkSettings": {"Ports": {}},
    }
    for key, value in over.items():
        base[key] = value
    return base


def labels_of(volume):
    role = "jenkins-home" if volume.endswith("home") else "docker-data"
    return managed_labels(NAME, role)


@pytest.mark.parametrize("source", ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/tmp/djt-x/d.sock"])
def test_host_socket_mount_fails(source):
    a = attrs()
    a["Mounts"].append({"Type": "bind", "Source": source, "Destination": "/var/run/host-docker.sock"})
    check = check_host_socket(a, ("/var/run/docker.sock", "/run/docker.sock", "/tmp/djt-x/d.sock"))
    assert check.status == FAIL and source in check.detail and check.fix
    assert check_host_socket(attrs()).status == OK


def test_security_modes_are_stated_plainly():
    privileged = check_security_mode(attrs(HostConfig={"Privileged": True}))
    assert privileged.status == WARN and "equal to root on the host" in privileged.detail
    caps = check_security_mode(attrs())
    assert caps.status == WARN and "SYS_ADMIN" in caps.detail and "root on the host" in caps.detail
    assert check_security_mode(attrs(HostConfig={"Runtime": "sysbox-runc"})).status == OK


def test_secrets_in_environment_are_named_never_shown():
    a = attrs()
    a["Config"]["Env"] += ["JENKINS_ADMIN_PASSWORD=hunter2", "GITHUB_TOKEN=ghp_abc", "EMPTY_SECRET="]
    check = check_environment(a)
    assert check.status == FAIL and "GITHUB_TOKEN" in check.detail and "JENKINS_ADMIN_PASSWORD" in check.detail
    assert "hunter2" not in check.detail and "ghp_abc" not in check.detail and "EMPTY_SECRET" not in check.detail
    assert check_environment(attrs()).status == OK  # *_FILE is a path, not a secret


def test_volumes_named_labelled_anonymous_missing():
    assert check_volumes(attrs(), NAME, labels_of).status == OK
    assert check_volumes(attrs(), NAME, lambda v: {}).status == WARN
    a = attrs()
    a["Mounts"][1] = {"Type": "volume", "Name": "ab" * 32, "Destination": "/var/lib/docker"}
    assert check_volumes(a, NAME, labels_of).status == FAIL
    a["Mounts"] = a["Mounts"][:1]
    check = check_volumes(a, NAME, labels_of)
    assert check.status == FAIL and "container layer" in check.detail


def test_published_address_host_network_and_bridge():
    listening = parse_listening(PROC_NET_TCP)
    assert ("127.0.0.1", 18080) in listening and ("0.0.0.0", 50000) in listening and ("::", 18081) in listening
    assert check_published(attrs(), listening).status == OK
    assert check_published(attrs(), [("0.0.0.0", 18080)]).status == FAIL
    assert check_published(attrs(), []).status == WARN
    bridge = attrs(HostConfig={"NetworkMode": "bridge"},
                   NetworkSettings={"Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}], "50000/tcp": None}})
    check = check_published(bridge, None)
    assert check.status == FAIL and "0.0.0.0:18080" in check.detail
    bridge["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostIp"] = "127.0.0.1"
    assert check_published(bridge, None).status == OK
    assert jenkins_url(bridge | {"Config": {"Labels": {}}}) == "http://127.0.0.1:18080/"


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:46A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 00000000:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:46A0 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 3 1
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:46A1 00000000000000000000000000000000:0000 0A 0
"""


def test_dockerd_command_lines_and_tcp():
    out = "dockerd\n--host=unix:///var/run/docker.sock\n--group=docker\n--\ndockerd\n-H\ntcp://0.0.0.0:2375\n--\n"
    blocks = parse_argv_blocks(out)
    assert dockerd_hosts(blocks[1]) == ["tcp://0.0.0.0:2375"]
    plain = check_nested_tcp(blocks, {}, {"tcp://0.0.0.0:2375": True})
    assert plain.status == FAIL and "without TLS" in plain.detail and "answered a plain HTTP ping" in plain.detail
    assert check_nested_tcp([["dockerd", "-H127.0.0.1:2375"]], {}, {}).status == FAIL  # no scheme = tcp
    tls = ["dockerd", "--host=tcp://0.0.0.0:2376", "--tlsverify", "--tlscacert=/certs/server/ca.pem"]
    assert check_nested_tcp([tls], {}, {}).status == OK
    assert check_nested_tcp([blocks[0]], {"hosts": ["tcp://127.0.0.1:2375"]}, {}).status == FAIL
    assert check_nested_tcp([blocks[0]], {}, {}).status == OK
    assert check_nested_tcp([], {}, {}).status == WARN


def test_filesystem_driver_and_running():
    assert check_data_fs("overlayfs").status == FAIL and check_data_fs("ext2/ext3").status == OK
    assert check_storage_driver("vfs").status == FAIL and check_storage_driver("overlay2").status == OK
    assert check_running(attrs(State={"Status": "exited"})).status == FAIL
    assert check_running(attrs(State={"Status": "running", "Health": {"Status": "unhealthy"}})).status == FAIL


def test_jenkins_checks():
    good = JenkinsFacts(reachable=True, use_security=True, anonymous_read=False)
    assert [c.status for c in (check_jenkins_security(good), check_anonymous(good), check_admin_password(good))] == [OK] * 3
    off = JenkinsFacts(reachable=True, use_security=False, anonymous_read=True)
    assert check_jenkins_security(off).status == FAIL
    reads = JenkinsFacts(reachable=True, use_security=True, anonymous_read=True)
    assert check_anonymous(reads).status == WARN
    configures = JenkinsFacts(reachable=True, anonymous_read=True, anonymous_config=["a"])
    assert check_anonymous(configures).status == FAIL
    default = JenkinsFacts(reachable=True, default_password="a well-known default")
    assert check_admin_password(default).status == FAIL
    down = JenkinsFacts(reachable=False, error="connection refused")
    assert check_jenkins_security(down).status == WARN


def test_security_config_from_jenkins_home():
    matrix = ("<hudson><useSecurity>true</useSecurity><authorizationStrategy class=\"hudson.security."
              "GlobalMatrixAuthorizationStrategy\"><permission>USER:hudson.model.Item.Build:anonymous</permission>"
              "<permission>hudson.model.Hudson.Read:anonymous</permission>"
              "<permission>GROUP:hudson.model.Hudson.Administer:admins</permission></authorizationStrategy></hudson>")
    use, strategy, grants = parse_security_config(matrix)
    assert use is True and strategy.endswith("GlobalMatrixAuthorizationStrategy") and grants == ["Item/Build"]
    facts = JenkinsFacts(reachable=True, use_security=True, anonymous_read=True, anonymous_grants=grants)
    assert check_anonymous(facts).status == FAIL
    unsecured = '<hudson><authorizationStrategy class="hudson.security.AuthorizationStrategy$Unsecured"/></hudson>'
    facts = JenkinsFacts(reachable=True, strategy=parse_security_config(unsecured)[1])
    assert check_jenkins_security(facts).status == FAIL


def test_a_registered_check_runs_in_audit_with_the_facts_it_names(monkeypatch, tmp_path):
    monkeypatch.setattr(checks, "CHECKS", list(checks.CHECKS))  # the registration is undone after the test

    @checks.check("restart-count", "attrs", "name")
    def check_restarts(attrs, name):
        count = attrs.get("RestartCount", 0)
        return Check("restart-count", WARN if count else OK, f"{name} restarted {count} times")

    wrapper = FakeWrapper(NAME, container="exited")
    wrapper.client.containers_by_name[NAME].restart_count = 2
    results = audit(wrapper, Settings(state_dir=tmp_path))
    assert results[-1] == Check("restart-count", WARN, "w1 restarted 2 times")
    assert [c.id for c in results] == [r.id for r in checks.CHECKS] and len(results) == 14
    # Stopped: the checks needing facts from inside the wrapper or from Jenkins are skipped, not this one.
    skipped = {c.id for c in results if c.detail == "skipped: the wrapper is not running"}
    assert skipped == {"nested-daemon-tcp", "docker-data-filesystem", "nested-storage-driver", "published-address",
                       "jenkins-security", "jenkins-anonymous", "admin-password", "jenkins-quiet-down"}


def test_audit_gathers_only_the_facts_the_checks_name(monkeypatch, tmp_path):
    monkeypatch.setattr(checks, "CHECKS", [])

    @checks.check("driver-named", "storage_driver")
    def check_driver(driver):
        return Check("driver-named", OK if driver else FAIL, f"driver {driver}")

    wrapper = FakeWrapper(NAME)
    container = wrapper.client.containers_by_name[NAME]
    container.exec_results[("docker", "info", "--format", "{{.Driver}}")] = (0, b"overlay2\n")
    assert audit(wrapper, Settings(state_dir=tmp_path)) == [Check("driver-named", OK, "driver overlay2")]
    checks.check("misspelt", "nothing")(check_driver)
    with pytest.raises(KeyError, match="no fact named 'nothing'"):
        audit(wrapper, Settings(state_dir=tmp_path))


def test_quiet_down_is_shown_with_whose_it_is():
    assert check_quiet_down(QuietDown(False)).status == OK
    left = check_quiet_down(QuietDown(True, ours=True))
    assert left.status == WARN and "killed" in left.detail and "dindjobs status" in left.fix
    assert "process 42" in check_quiet_down(QuietDown(True, ours=True, backup_pid=42)).detail
    foreign = check_quiet_down(QuietDown(True))
    assert "not asked by dindjobs" in foreign.detail and "Cancel Shutdown" in foreign.fix
    assert check_quiet_down(QuietDown(None, error="401 bad credentials")).detail == "could not tell: 401 bad credentials"
