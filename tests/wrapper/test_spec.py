"""The run options of the wrapper container (src/dindjobs/wrapper/spec.py): pure data, no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dindjobs.errors import ConfigError, DockerEngineError
from dindjobs.wrapper.spec import (
    EngineFacts,
    WrapperSpec,
    capabilities_from_status,
    run_options,
    settings_differences,
)

NO_BRIDGE = EngineFacts(has_bridge=False)
BRIDGE = EngineFacts(has_bridge=True)
PASSWORD = Path("/state/dj/admin-password")


def env_of(body) -> dict[str, str]:
    return dict(item.split("=", 1) for item in body["Env"])


def test_no_bridge_engine_gets_host_networking_and_a_quiet_nested_daemon():
    body = run_options(WrapperSpec(name="dj", port=18080, dockerd_args=("--debug",)), NO_BRIDGE)
    env = env_of(body)
    assert body["HostConfig"]["NetworkMode"] == "host"
    assert "PortBindings" not in body["HostConfig"]
    assert env["JENKINS_HTTP_PORT"] == "18080"
    assert env["JENKINS_HTTP_LISTEN_ADDRESS"] == "127.0.0.1"
    assert env["DINDJOBS_DOCKERD_ARGS"].split() == ["--bridge=none", "--iptables=false", "--ip6tables=false", "--debug"]
    assert body["Labels"]["io.dindjobs.url"] == "http://127.0.0.1:18080/"


def test_bridge_engine_publishes_on_loopback_by_default_and_binds_elsewhere_on_request():
    body = run_options(WrapperSpec(name="dj", port=18081), BRIDGE)
    assert body["HostConfig"]["NetworkMode"] == "bridge"
    assert body["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18081"}]}
    env = env_of(body)
    assert env["JENKINS_HTTP_PORT"] == "8080" and "DINDJOBS_DOCKERD_ARGS" not in env
    assert "JENKINS_HTTP_LISTEN_ADDRESS" not in env  # inside its own namespace it must listen everywhere
    wide = run_options(WrapperSpec(name="dj", bind="0.0.0.0"), BRIDGE)
    assert wide["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "0.0.0.0"
    assert wide["Labels"]["io.dindjobs.url"] == "http://127.0.0.1:8080/"


def test_asking_for_bridge_on_an_engine_without_one_is_a_clear_error():
    with pytest.raises(DockerEngineError, match="no default bridge network"):
        run_options(WrapperSpec(network="bridge"), NO_BRIDGE)


def test_named_volumes_and_password_file_mount_never_the_value():
    body = run_options(WrapperSpec(name="dj", password_file=PASSWORD), NO_BRIDGE)
    mounts = body["HostConfig"]["Mounts"]
    assert {"Type": "volume", "Source": "dj-jenkins-home", "Target": "/var/jenkins_home"} in mounts
    assert {"Type": "volume", "Source": "dj-docker-data", "Target": "/var/lib/docker"} in mounts
    assert {"Type": "bind", "Source": str(PASSWORD), "Target": "/run/secrets/jenkins-admin-password", "ReadOnly": True} in mounts
    # No bind of the host's own /var/lib/docker, no anonymous volume.
    assert all(m["Source"] for m in mounts) and not any(m["Source"] == "/var/lib/docker" for m in mounts)
    assert env_of(body)["JENKINS_ADMIN_PASSWORD_FILE"] == "/run/secrets/jenkins-admin-password"
    assert not any(k.endswith("PASSWORD") for k in env_of(body))


def test_restart_stop_timeout_and_labels():
    body = run_options(WrapperSpec(name="dj"), NO_BRIDGE)
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 0}
    assert body["StopTimeout"] == 60
    labels = body["Labels"]
    assert labels["io.dindjobs.managed"] == "true" and labels["io.dindjobs.name"] == "dj"
    assert labels["io.dindjobs.security"] == "privileged"
    assert json.loads(labels["io.dindjobs.settings"])["network"] == "host"


def test_security_modes():
    assert run_options(WrapperSpec(), NO_BRIDGE)["HostConfig"]["Privileged"] is True
    facts = EngineFacts(has_bridge=False, capabilities=("CAP_SYS_ADMIN", "CAP_NET_ADMIN"))
    caps = run_options(WrapperSpec(security="caps"), facts)["HostConfig"]
    assert "Privileged" not in caps
    assert caps["CapAdd"] == ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    assert caps["SecurityOpt"] == ["seccomp=unconfined", "apparmor=unconfined"]
    # systempaths=unconfined, the way the docker CLI sends it: no masked or read-only paths.
    assert caps["MaskedPaths"] == [] and caps["ReadonlyPaths"] == []
    assert caps["DeviceCgroupRules"] == ["a *:* rwm"]
    # The fallback overrides the asked mode but the recorded request stays "privileged".
    fallback = run_options(WrapperSpec(), facts, security="caps")
    assert fallback["Labels"]["io.dindjobs.security"] == "caps"
    assert json.loads(fallback["Labels"]["io.dindjobs.settings"])["security"] == "privileged"


def test_sysbox_needs_the_runtime_and_a_bridge():
    with pytest.raises(DockerEngineError, match="no sysbox-runc runtime"):
        run_options(WrapperSpec(security="sysbox"), BRIDGE)
    with_sysbox = EngineFacts(has_bridge=True, runtimes=frozenset({"runc", "sysbox-runc"}))
    host_config = run_options(WrapperSpec(security="sysbox"), with_sysbox)["HostConfig"]
    assert host_config["Runtime"] == "sysbox-runc" and "Privileged" not in host_config and "CapAdd" not in host_config
    no_bridge_sysbox = EngineFacts(has_bridge=False, runtimes=frozenset({"sysbox-runc"}))
    with pytest.raises(DockerEngineError, match="cannot use host networking"):
        run_options(WrapperSpec(security="sysbox"), no_bridge_sysbox)


def test_bounding_set_of_a_kernel_without_cap_sys_resource():
    # This machine's CapBnd: every capability up to 40 but bit 24 (CAP_SYS_RESOURCE).
    caps = capabilities_from_status("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    assert "CAP_SYS_RESOURCE" not in caps
    assert {"CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_MKNOD", "CAP_CHECKPOINT_RESTORE"} <= set(caps)
    assert len(caps) == 40
    with pytest.raises(ValueError):
        capabilities_from_status("Name:\tx\n")


def test_settings_differences_name_each_difference():
    old = {"port": 8080, "image": "a", "security": "privileged", "dockerd_args": []}
    assert settings_differences(old, dict(old)) == []
    new = {**old, "port": 8081, "dockerd_args": ["--debug"]}
    assert settings_differences(old, new) == ["dockerd_args: running none, asked '--debug'", "port: running 8080, asked 8081"]
    # Asking for caps explicitly after a privileged-to-caps fallback changes nothing.
    assert settings_differences(old, {**old, "security": "caps"}, effective_security="caps") == []
    assert settings_differences(old, {**old, "security": "sysbox"}, effective_security="caps") == [
        "security: running privileged, asked sysbox"
    ]


@pytest.mark.parametrize("kwargs", [{"security": "root"}, {"network": "overlay"}, {"port": 0}, {"name": "-x"}, {"name": "a/b"}])
def test_bad_specs_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        WrapperSpec(**kwargs)
