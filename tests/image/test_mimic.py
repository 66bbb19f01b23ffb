"""The ONLINE path of dind-image/Dockerfile, built and run offline on the mimic base.

dind-image/mimic/ is a look-alike of jenkins/jenkins made without a registry (the stand-in runs
where jenkins.war would). The wrapper is built on it exactly as on the real base (no --offline:
BASE_IMAGE is the mimic), then the demo chain runs: up, wait, sync jjb/, verify jjb/.
What this proves and what it cannot is in dind-image/README.md ("The online path, offline").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from dindjobs.standin.model import VERSION
from dindjobs.standin.plugins import parse_plugin_file
from support.dind import free_port
from support.wrapper_cli import Cli, cleanup, unique_name

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
MIMIC = "dindjobs-mimic-base:2.580.2"
IMAGE = "dindjobs-wrapper:mimic"
PLUGINS = sorted(p.short_name for p in parse_plugin_file((REPO / "dind-image" / "plugins.txt").read_text()))
STANDIN_LABEL = f"dindjobs stand-in (Jenkins {VERSION} REST API)"


@pytest.fixture(scope="module")
def mimic_wrapper(docker_engine) -> str:
    """The mimic base, then the wrapper on it through the Dockerfile's online path."""
    env = dict(os.environ, DOCKER_HOST=docker_engine.docker_host)
    done = subprocess.run([str(REPO / "dind-image" / "mimic" / "build.sh")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run([sys.executable, "-m", "dindjobs", "image", "--base", MIMIC, "--tag", IMAGE],
                          env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return IMAGE


def run_in(docker_client, image: str, command, **kwargs) -> tuple[int, str]:
    container = docker_client.containers.run(image, command, detach=True, **kwargs)
    try:
        code = container.wait(timeout=120)["StatusCode"]
        return code, container.logs().decode()
    finally:
        container.remove(force=True)


def test_mimic_has_what_the_wrapper_relies_on(docker_client, mimic_wrapper):
    config = docker_client.images.get(MIMIC).attrs["Config"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["JENKINS_HOME"] == "/var/jenkins_home" and env["REF"] == "/usr/share/jenkins/ref"
    assert config["User"] == "jenkins" and config["Entrypoint"] == ["/usr/bin/tini", "--", "/usr/local/bin/jenkins.sh"]
    code, out = run_in(docker_client, MIMIC, ["bash", "-c", "id; test -f /usr/share/jenkins/jenkins.war && echo war"])
    assert code == 0 and "uid=1000(jenkins) gid=1000(jenkins)" in out and "war" in out
    # jenkins-plugin-cli checks each line and installs into the reference directory.
    code, out = run_in(docker_client, MIMIC, ["bash", "-c", "printf 'git\\nbad/id\\n' >/tmp/p.txt; "
                                                            "jenkins-plugin-cli --plugin-file /tmp/p.txt"])
    assert code == 1 and "/tmp/p.txt:2" in out
    code, out = run_in(docker_client, MIMIC, ["bash", "-c", "printf 'git:5.2.1\\n' >/tmp/p.txt; "
                                                            "jenkins-plugin-cli -f /tmp/p.txt && ls $REF/plugins"])
    assert code == 0 and "git.jpi" in out
    # jenkins.sh splits JAVA_OPTS shell-style and hands JENKINS_OPTS to the war (which refuses --prefix).
    code, out = run_in(docker_client, MIMIC, [], environment={"JENKINS_OPTS": "--prefix=/x"})
    assert code != 0 and "--prefix is not supported" in out


def test_wrapper_built_online_installs_plugins_txt(docker_client, mimic_wrapper):
    code, out = run_in(docker_client, mimic_wrapper, [], entrypoint=["ls", "/usr/share/jenkins/ref/plugins"])
    assert code == 0 and sorted(name.removesuffix(".jpi") for name in out.split()) == PLUGINS
    labels = docker_client.images.get(mimic_wrapper).labels
    assert labels["org.opencontainers.image.base.name"] == MIMIC


def test_demo_chain_on_the_online_path(docker_engine, docker_client, mimic_wrapper, tmp_path):
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    name = unique_name("djmimic")
    cli.env["DINDJOBS_NAME"] = name
    try:
        up = cli.json("up", "--image", mimic_wrapper, "--port", free_port(), "--wait", 180, timeout=300)
        cli.env["DINDJOBS_URL"] = url = up["url"]
        waited = cli.ok("wait", "--timeout", 300)
        assert STANDIN_LABEL in waited.stdout
        sync = cli.ok("sync", str(REPO / "jjb"), "--yes")
        assert "failed 0" in sync.stdout, sync.stdout
        verify = cli.run("verify", str(REPO / "jjb"), "--quiet", timeout=900)
        assert verify.returncode == 0, verify.stdout + verify.stderr[-3000:]
        assert "images/pipeline-hello: skipped: running pipelines needs jenkins.war" in verify.stdout
        assert "3/4 jobs built and proved nested" in verify.stdout
        # The image's JCasC file secured it: no anonymous reads; the plugins are plugins.txt's.
        assert requests.get(url + "api/json", timeout=10).status_code == 403
        password = Path(up["password_file"]).read_text().strip()
        root = requests.get(url + "api/json", auth=("admin", password), timeout=10).json()
        assert root["description"].startswith("dindjobs wrapper:")  # the casc file's system message
        plugins = requests.get(url + "pluginManager/api/json?tree=plugins[shortName]", auth=("admin", password),
                               timeout=10).json()["plugins"]
        assert sorted(p["shortName"] for p in plugins) == PLUGINS
        status = json.loads(cli.ok("status", "--json").stdout)
        assert status["jenkins"]["server"] == STANDIN_LABEL
    finally:
        cleanup(docker_client, name)
