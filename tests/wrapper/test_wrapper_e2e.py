"""`dindjobs image / up / status / down / logs` end to end: real engine, offline image, host networking.

One wrapper goes through its whole life, each step checked through the CLI's own output and
against the engine: up -> status running and healthy -> up again is a no-op -> down keeps the
volumes -> up again finds the Jenkins home and nested images -> down --volumes --yes removes
everything it created and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import docker.errors
import pytest

from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.spec import CAPABILITIES, capabilities_from_status
from support.cli import run_cli as run
from support.images import busybox_context
from support.net import free_port

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

WAIT = "240"  # seconds for health; the stand-in starts in seconds, the budget is for slow CI






@pytest.fixture(scope="module")
def wrapper_image(docker_engine):
    """`dindjobs image --offline` on the test engine (cached layers: quick when nothing changed)."""
    env = {**os.environ, "DOCKER_HOST": docker_engine.docker_host}
    done = subprocess.run([sys.executable, "-m", "dindjobs", "image", "--offline", "--json"],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Step 1/" in done.stderr  # build output streamed as progress, on stderr
    built = json.loads(done.stdout)
    assert built["tag"] == "dindjobs-wrapper:latest" and built["id"].startswith("sha256:")
    return built


def privileged_needs_fallback() -> bool:
    """True when this kernel's bounding set lacks a capability Docker gives --privileged containers."""
    caps = capabilities_from_status(Path("/proc/self/status").read_text())
    return any(f"CAP_{name}" not in caps for name in CAPABILITIES[:38])  # up to AUDIT_READ: every engine knows them


@pytest.fixture
def names(docker_client, busybox_image):
    """A unique wrapper name, plus a bystander volume and container (not ours) with the same prefix."""
    name = f"djtest-{uuid.uuid4().hex[:8]}"
    bystander_volume = docker_client.volumes.create(name=f"{name}-bystander")
    docker_client.containers.create(busybox_image, name=f"{name}-bystander", network_mode="host")
    yield name
    for container_name in (name, f"{name}-bystander"):
        try:
            docker_client.containers.get(container_name).remove(force=True, v=False)
        except docker.errors.NotFound:
            pass
    for volume_name in (f"{name}-jenkins-home", f"{name}-docker-data", bystander_volume.name):
        try:
            docker_client.volumes.get(volume_name).remove(force=True)
        except docker.errors.NotFound:
            pass


def test_wrapper_life_cycle(capsys, monkeypatch, clean_env, docker_engine, docker_client, wrapper_image, names):
    monkeypatch.setenv("DOCKER_HOST", docker_engine.docker_host)
    name, port = names, free_port()
    outputs: list[str] = []

    def dj(*argv: str) -> tuple[int, str, str]:
        code, out, err = run(capsys, *argv)
        outputs.extend([out, err])
        return code, out, err

    # 1. up: named volumes, caps fallback where the kernel needs it, host networking.
    code, out, err = dj("up", "--name", name, "--port", str(port), "--wait", WAIT, "--json")
    assert code == 0, err[-3000:]
    first = json.loads(out)
    assert first["action"] == "created" and first["network"] == "host"
    assert first["volumes"] == {f"{name}-jenkins-home": "created", f"{name}-docker-data": "created"}
    assert first["url"] == f"http://127.0.0.1:{port}/"
    assert "host networking" in err
    attrs = docker_client.api.inspect_container(name)
    if privileged_needs_fallback():
        assert first["security"] == "caps" and "unable to apply caps" in err
        assert attrs["HostConfig"]["Privileged"] is False and "CAP_SYS_ADMIN" in attrs["HostConfig"]["CapAdd"]
        assert attrs["HostConfig"]["MaskedPaths"] == [] and attrs["HostConfig"]["DeviceCgroupRules"] == ["a *:* rwm"]
    else:
        assert first["security"] == "privileged" and attrs["HostConfig"]["Privileged"] is True
    assert attrs["HostConfig"]["NetworkMode"] == "host" and attrs["Config"]["StopTimeout"] == 60
    assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
    # Only named volumes (no anonymous ones from the image's VOLUME lines), never the host's data root.
    volume_mounts = {m["Destination"]: m for m in attrs["Mounts"] if m["Type"] == "volume"}
    assert {d: m["Name"] for d, m in volume_mounts.items()} == {
        "/var/jenkins_home": f"{name}-jenkins-home", "/var/lib/docker": f"{name}-docker-data"}
    password_file = Path(first["password_file"])
    assert password_file.parent.stat().st_mode & 0o777 == 0o700 and password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()

    # 2. status: running, healthy, both halves answer, volumes have sizes.
    code, out, _ = dj("status", "--name", name, "--json")
    report = json.loads(out)
    assert code == 0 and report["state"] == "running" and report["health"] == "healthy"
    assert report["nested_daemon"]["reachable"] and report["jenkins"]["reachable"]
    assert report["security"] == first["security"] and report["url"] == first["url"]
    assert all(v["exists"] and v["managed"] for v in report["volumes"])
    wrapper = Wrapper(docker_client, name)
    nested_id = report["nested_daemon"]["id"]
    assert nested_id != wrapper.host_daemon_id()

    # 3. up again with the same settings: nothing happens; other settings: named difference.
    container_id = attrs["Id"]
    code, out, err = dj("up", "--name", name, "--port", str(port), "--json")
    assert code == 0 and json.loads(out)["action"] == "unchanged" and "nothing to do" in err
    assert docker_client.containers.get(name).id == container_id
    code, _, err = dj("up", "--name", name, "--port", str(port + 1))
    assert code == 1 and f"port: running {port}, asked {port + 1}" in err

    # State to find again: a file in Jenkins home, an image built in the nested daemon.
    code, _ = wrapper.exec(["sh", "-c", "echo kept > /var/jenkins_home/djtest-marker"], user="jenkins")
    assert code == 0
    docker_client.containers.get(name).put_archive("/tmp", busybox_context("djctx", label=name, cmd='"true"'))
    code, built = wrapper.exec(["docker", "build", "-q", "-t", f"{name}-nested:1", "/tmp/djctx"])
    assert code == 0, built
    nested_image = built.strip().splitlines()[-1]
    assert wrapper.image_exists_in_nested(nested_image) and not wrapper.image_exists_on_host(nested_image)

    # 4. logs: both halves.
    code, out, _ = dj("logs", "--name", name, "--tail", "400")
    assert code == 0 and "dockerd:" in out and "dindjobs-entrypoint" in out

    # 5. down keeps the volumes.
    code, out, err = dj("down", "--name", name, "--json")
    assert code == 0 and json.loads(out) == {
        "name": name, "container": "removed", "password_file": None,
        "volumes": {f"{name}-jenkins-home": "kept", f"{name}-docker-data": "kept"}}
    assert not docker_client.containers.list(all=True, filters={"name": f"^{name}$"})

    # 6. up again: the same Jenkins home, the same nested daemon with its image.
    code, out, err = dj("up", "--name", name, "--port", str(port), "--wait", WAIT, "--json")
    assert code == 0, err[-3000:]
    assert set(json.loads(out)["volumes"].values()) == {"reused"}
    assert wrapper.exec(["cat", "/var/jenkins_home/djtest-marker"]) == (0, "kept\n")
    assert wrapper.nested_daemon_id() == nested_id
    assert wrapper.image_exists_in_nested(nested_image)

    # No secret in docker inspect (env, command line, labels) nor in any process' command line.
    inspected = json.dumps(docker_client.api.inspect_container(name))
    assert password not in inspected
    code, processes = wrapper.exec(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"])
    assert code == 0 and "dockerd" in processes and password not in processes
    code, environments = wrapper.exec(["sh", "-c", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'"])
    assert code == 0 and "JENKINS_ADMIN_PASSWORD_FILE" in environments and password not in environments

    # 7. down --volumes --yes: ours gone, the bystanders with the same prefix untouched.
    code, out, err = dj("down", "--name", name, "--volumes", "--yes", "--json")
    assert code == 0, err
    gone = json.loads(out)
    assert gone["volumes"] == {f"{name}-jenkins-home": "removed", f"{name}-docker-data": "removed"}
    assert not password_file.exists()
    left = {v.name for v in docker_client.volumes.list(filters={"name": name})}
    assert left == {f"{name}-bystander"}
    assert [c.name for c in docker_client.containers.list(all=True, filters={"name": name})] == [f"{name}-bystander"]

    assert not any(password in text for text in outputs)
