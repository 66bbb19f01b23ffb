"""The whole chain on a real engine with the offline image: up -> wait -> sync jjb/ -> verify.

One wrapper for the module. Besides the example jobs, a few test jobs (synced once) show that
verify fails for the right reason: a job pointed at a daemon that is not there, a job that
really builds on the HOST daemon (through a loopback forwarder to the host socket, open only
during that test), a broken Dockerfile, and --no-trigger on a job never built.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
import yaml

from support.dind import build_image
from support.net import free_port

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
FOLDER = "verify-e2e"




class Chain:
    """The CLI as a user runs it, against one wrapper."""

    def __init__(self, env: dict[str, str], name: str, url: str) -> None:
        self.env, self.name, self.url = env, name, url

    def dj(self, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dindjobs", *argv], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)


def evidence_script(docker_host: str, tag: str) -> str:
    """A build step that talks to ``docker_host`` instead of the nested daemon's socket."""
    return "\n".join([
        "#!/bin/sh", "set -eu", f"export DOCKER_HOST={docker_host}",
        'rm -rf ctx && mkdir ctx && cp /bin/busybox ctx/busybox',
        "printf 'FROM scratch\\nCOPY busybox /bin/busybox\\n' > ctx/Dockerfile",
        f"docker build --network none -t {tag} ctx",
        "echo \"DINDJOBS-EVIDENCE daemon-id=$(docker info --format '{{.ID}}')\"",
        f"echo \"DINDJOBS-EVIDENCE image-id=$(docker image inspect --format '{{{{.Id}}}}' {tag})\"",
        f"echo \"DINDJOBS-EVIDENCE tag={tag}\"", ""])


def write_test_jobs(directory: Path, escape_port: int, dead_port: int, escape_tag: str) -> None:
    """YAML for the failure cases, in their own folder."""
    build_script = (REPO / "jjb" / "scripts" / "build-image.sh").read_text()
    broken = {"job": {
        "name": f"{FOLDER}/broken-dockerfile",
        "parameters": [
            {"string": {"name": "IMAGE_NAME", "default": "broken"}},
            {"string": {"name": "IMAGE_TAG", "default": "1"}},
            {"string": {"name": "BUILD_CONTEXT", "default": ""}},
            {"text": {"name": "DOCKERFILE", "default": "FROM dindjobs/busybox-base\nRUN echo about to fail && exit 7\n"}},
            {"text": {"name": "BUILD_ARGS", "default": ""}},
        ],
        "builders": [{"shell": build_script}],
    }}
    make_repo = "\n".join([
        "#!/bin/sh", "set -eu", "rm -rf /tmp/djv-ctx /tmp/djv-ctx.git", "mkdir /tmp/djv-ctx", "cd /tmp/djv-ctx",
        "printf 'FROM dindjobs/busybox-base\\nCOPY hello.txt /\\nCMD [\"cat\", \"/hello.txt\"]\\n' > Dockerfile",
        "echo 'built from a git context' > hello.txt", "git init -q", "git add .",
        "git -c user.name=verify -c user.email=verify@localhost commit -q -m context",
        "git clone -q --bare /tmp/djv-ctx /tmp/djv-ctx.git", ""])
    from_git = {"job": {
        "name": f"{FOLDER}/git-context",
        "parameters": [
            {"string": {"name": "IMAGE_NAME", "default": "from-git"}},
            {"string": {"name": "IMAGE_TAG", "default": "2"}},
            {"string": {"name": "BUILD_CONTEXT", "default": "file:///tmp/djv-ctx.git"}},
            {"text": {"name": "DOCKERFILE", "default": ""}},
            {"text": {"name": "BUILD_ARGS", "default": ""}},
        ],
        "builders": [{"shell": make_repo}, {"shell": build_script}],
    }}
    docs = [
        {"job": {"name": FOLDER, "project-type": "folder"}},
        broken,
        from_git,
        {"job": {"name": f"{FOLDER}/wrong-docker-host",
                 "builders": [{"shell": evidence_script(f"tcp://127.0.0.1:{dead_port}", "wrong:1")}]}},
        {"job": {"name": f"{FOLDER}/host-escape",
                 "builders": [{"shell": evidence_script(f"tcp://127.0.0.1:{escape_port}", escape_tag)}]}},
        {"job": {"name": f"{FOLDER}/never-built", "builders": [{"shell": "echo never"}]}},
    ]
    # JJB expands {braces} in job text; the Go templates in the scripts must stay literal.
    text = yaml.safe_dump(docs, sort_keys=False).replace("{", "{{").replace("}", "}}")
    (directory / "verify-e2e.yaml").write_text(text)


@pytest.fixture(scope="module")
def chain(docker_engine, docker_client, tmp_path_factory):
    build_image(docker_engine.docker_host)
    tmp = tmp_path_factory.mktemp("verify-e2e")
    name = f"djv-e2e-{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINDJOBS_", "JJB_"))}
    env.update(DOCKER_HOST=docker_engine.docker_host, DINDJOBS_STATE_DIR=str(tmp / "state"),
               XDG_CACHE_HOME=str(tmp / "cache"), DINDJOBS_NAME=name, DINDJOBS_URL=url,
               PYTHONPATH=str(REPO / "src"))
    c = Chain(env, name, url)
    c.escape_port, c.dead_port = free_port(), free_port()
    c.escape_tag = f"djv-escape-{uuid.uuid4().hex[:8]}:1"
    c.jobs_dir = tmp / "jobs"
    c.jobs_dir.mkdir()
    write_test_jobs(c.jobs_dir, c.escape_port, c.dead_port, c.escape_tag)
    try:
        up = c.dj("up", "--port", str(port), "--json")
        assert up.returncode == 0, up.stderr
        wait = c.dj("wait", "--timeout", "240")
        assert wait.returncode == 0, wait.stderr
        for path in ("jjb/", str(c.jobs_dir)):
            synced = c.dj("sync", path, "--yes")
            assert synced.returncode == 0, synced.stdout + synced.stderr
        yield c
    finally:
        c.dj("down", "--volumes", "--yes", timeout=300)


def nested_id(docker_client, name: str) -> str:
    result = docker_client.containers.get(name).exec_run(["docker", "info", "--format", "{{.ID}}"])
    assert result.exit_code == 0, result.output
    return result.output.decode().strip()


def test_the_example_jobs_build_in_the_nested_daemon_and_every_proof_holds(chain, docker_client):
    done = chain.dj("verify", "jjb/", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    jobs = {j["job"]: j for j in report["jobs"]}
    # The pipeline example is stored by the stand-in but not run: skipped, never counted as proved.
    pipeline = jobs.pop("images/pipeline-hello")
    assert pipeline["skipped"].startswith("running pipelines needs jenkins.war") and not pipeline["ok"]
    assert set(jobs) == {"images/build-hello", "images/build-multistage", "images/build-greeting"}
    nested, host = nested_id(docker_client, chain.name), docker_client.info()["ID"]
    assert nested != host
    assert report["nested_daemon_id"] == nested and report["host_daemon_id"] == host
    for job in jobs.values():
        assert job["result"] == "SUCCESS" and job["ok"]
        assert [c["status"] for c in job["checks"]] == ["pass"] * 5
        assert job["evidence"]["daemon_id"] == nested
        image = job["evidence"]["image_id"]
        with pytest.raises(Exception, match="No such image|not found"):
            docker_client.images.get(image)
        found = docker_client.containers.get(chain.name).exec_run(["docker", "image", "inspect", image])
        assert found.exit_code == 0
    assert jobs["images/build-greeting"]["evidence"]["tag"] == "greeting:latest"
    # Consoles were streamed live, prefixed by job name since several ran.
    assert "[images/build-multistage] Successfully tagged multistage:1.0" in done.stderr
    assert "[images/build-greeting] built with a build argument" in done.stderr


def test_a_build_context_from_a_git_url_builds_nested(chain):
    done = chain.dj("verify", "--jobs", f"{FOLDER}/git-context", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = json.loads(done.stdout)["jobs"][0]
    assert job["evidence"]["tag"] == "from-git:2"
    assert "built from a git context" in done.stderr  # the job runs the image it built


def test_a_job_pointed_at_another_daemon_fails_with_a_clear_reason(chain):
    done = chain.dj("verify", "--jobs", f"{FOLDER}/wrong-docker-host")
    assert done.returncode == 1
    assert f"could not reach a Docker daemon at tcp://127.0.0.1:{chain.dead_port}" in done.stdout
    assert "DOCKER_HOST" in done.stdout and "FAILURE" in done.stdout


class Forwarder:
    """127.0.0.1:port -> the host engine's unix socket, so a job *can* reach the host daemon."""

    def __init__(self, port: int, socket_path: str) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.path = socket_path
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.path)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


def test_a_build_that_escaped_to_the_host_daemon_fails_every_proof(chain, docker_engine, docker_client):
    if not docker_engine.docker_host.startswith("unix://"):
        pytest.skip("the forwarder needs the host engine's unix socket")
    forwarder = Forwarder(chain.escape_port, docker_engine.docker_host[len("unix://"):])
    try:
        done = chain.dj("verify", "--jobs", f"{FOLDER}/host-escape", "--json")
    finally:
        forwarder.close()
    try:
        report = json.loads(done.stdout)
        job = report["jobs"][0]
        assert done.returncode == 1 and job["result"] == "SUCCESS", done.stderr[-3000:]
        checks = {c["name"]: c for c in job["checks"]}
        assert job["evidence"]["daemon_id"] == docker_client.info()["ID"]
        assert checks["not host daemon"]["status"] == "fail"
        assert "HOST daemon" in checks["not host daemon"]["detail"]
        assert checks["nested daemon"]["status"] == "fail"
        assert checks["image not on host"]["status"] == "fail"
        assert checks["image in nested"]["status"] == "fail"
    finally:
        try:
            docker_client.images.remove(chain.escape_tag, force=True)
        except Exception:  # noqa: BLE001 - the build may not have got that far
            pass


def test_a_broken_dockerfile_fails_with_its_console_tail(chain):
    done = chain.dj("verify", "--jobs", f"{FOLDER}/broken-dockerfile")
    assert done.returncode == 1
    assert "returned a non-zero code: 7" in done.stdout  # the reason line
    assert "last lines of the console" in done.stdout
    assert "| about to fail" in done.stdout and "| Finished: FAILURE" in done.stdout


def test_no_trigger_on_a_job_never_built_says_so(chain):
    done = chain.dj("verify", "--jobs", f"{FOLDER}/never-built", "--no-trigger")
    assert done.returncode == 1
    assert "never built" in done.stdout
    again = chain.dj("verify", "--jobs", f"{FOLDER}/never-built", "--no-trigger", "--json")
    assert json.loads(again.stdout)["jobs"][0]["build"] is None  # still nothing was triggered
