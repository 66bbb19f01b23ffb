"""`dindjobs doctor` on real wrappers: a default `up` passes; wrappers started by hand with the
host's Docker socket mounted, or with the nested daemon on plain TCP, fail naming the check."""

from __future__ import annotations

import json
import time

import pytest

from dindjobs.wrapper.engine import create_container, engine_facts
from dindjobs.wrapper.spec import WrapperSpec, run_options
from support.dind import build_image, free_port
from support.wrapper_cli import Cli, cleanup, unique_name

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

ALL_CHECKS = ["wrapper-running", "host-docker-socket", "security-mode", "secrets-in-environment", "volumes",
              "nested-daemon-tcp", "docker-data-filesystem", "nested-storage-driver", "published-address",
              "jenkins-security", "jenkins-anonymous", "admin-password", "jenkins-quiet-down"]


@pytest.fixture(scope="module")
def wrapper_image(docker_engine) -> str:
    return build_image(docker_engine.docker_host, offline=True)


def doctor(cli: Cli, name: str) -> tuple[int, dict]:
    done = cli.run("--name", name, "doctor", "--json", timeout=120)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def by_id(report: dict) -> dict:
    return {c["id"]: c for c in report["checks"]}


def start_by_hand(client, name: str, tmp_path, *, mounts=(), entrypoint=None) -> None:
    """Create and start a wrapper the way a user might by hand: the run options `up` computes in
    caps mode (privileged fails on some kernels), plus whatever the test adds."""
    password = tmp_path / f"{name}-password"
    password.write_text("a-long-random-test-password\n")
    spec = WrapperSpec(name=name, port=free_port(), password_file=password)
    body = run_options(spec, engine_facts(client), security="caps")
    body["Labels"] = {"org.dindjobs.test": "doctor"}  # started by hand: not managed by dindjobs
    body["HostConfig"]["Mounts"] += list(mounts)
    if entrypoint:
        body["Entrypoint"] = entrypoint
    created = create_container(client.api, body, name)  # drops caps an older engine does not know
    client.api.start(created["Id"])


def test_doctor_passes_on_a_default_up(docker_engine, docker_client, wrapper_image, tmp_path):
    name = unique_name("djt-doc")
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    try:
        cli.ok("--name", name, "up", "--port", free_port(), "--wait", 180)
        code, report = doctor(cli, name)
        checks = by_id(report)
        assert code == 0 and report["ok"], report
        assert [c["id"] for c in report["checks"]] == ALL_CHECKS
        assert {c["status"] for c in report["checks"]} <= {"ok", "warn"}
        assert checks["security-mode"]["status"] == "warn" and "root on the host" in checks["security-mode"]["detail"]
        for check in ("host-docker-socket", "nested-daemon-tcp", "volumes", "published-address", "jenkins-security",
                      "jenkins-anonymous", "admin-password", "secrets-in-environment", "nested-storage-driver",
                      "jenkins-quiet-down"):
            assert checks[check]["status"] == "ok", checks[check]
        text = cli.run("--name", name, "doctor")
        assert text.returncode == 0 and "0 fail" in text.stderr
    finally:
        cleanup(docker_client, name)


def test_doctor_fails_on_a_wrapper_with_the_host_socket(docker_engine, docker_client, wrapper_image, tmp_path):
    name = unique_name("djt-doc")
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    socket = docker_engine.docker_host.removeprefix("unix://")
    try:
        start_by_hand(docker_client, name, tmp_path,
                      mounts=[{"Type": "bind", "Source": socket, "Target": "/var/run/host-docker.sock"}])
        code, report = doctor(cli, name)
        check = by_id(report)["host-docker-socket"]
        assert code == 1 and not report["ok"]
        assert check["status"] == "fail" and socket in check["detail"] and check["fix"]
        text = cli.run("--name", name, "doctor")
        assert text.returncode == 1 and "host-docker-socket" in text.stderr.splitlines()[-1]
    finally:
        cleanup(docker_client, name)


def test_doctor_fails_on_a_nested_daemon_on_plain_tcp(docker_engine, docker_client, wrapper_image, tmp_path):
    name = unique_name("djt-doc")
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    port = free_port()
    # The image's entrypoint refuses tcp:// in DINDJOBS_DOCKERD_ARGS, so this one bypasses it:
    # the same preparation, then a dockerd that also listens on loopback TCP without TLS.
    script = (". /usr/local/bin/dindjobs-entrypoint && prepare_environment && clean_stale_state && "
              f"exec dockerd --host=unix:///var/run/docker.sock --host=tcp://127.0.0.1:{port} "
              "--bridge=none --iptables=false --ip6tables=false")
    try:
        start_by_hand(docker_client, name, tmp_path, entrypoint=["/usr/bin/tini", "--", "bash", "-c", script])
        container = docker_client.containers.get(name)
        deadline = time.monotonic() + 90
        while container.exec_run(["curl", "-s", f"http://127.0.0.1:{port}/_ping"]).output != b"OK":
            assert time.monotonic() < deadline, container.logs()[-2000:]
            time.sleep(0.5)
        code, report = doctor(cli, name)
        check = by_id(report)["nested-daemon-tcp"]
        assert code == 1 and check["status"] == "fail"
        assert f"tcp://127.0.0.1:{port}" in check["detail"] and "plain HTTP ping" in check["detail"]
        assert by_id(report)["host-docker-socket"]["status"] == "ok"
    finally:
        cleanup(docker_client, name)
