"""`--name` targets the named wrapper's Jenkins, on a real engine: a wrapper on a non-default
port, started with only DINDJOBS_PASSWORD_FILE set, receives `sync` without any URL given."""

from __future__ import annotations

import json

import pytest

from support.dind import build_image
from support.net import free_port
from support.wrapper_cli import Cli, cleanup, unique_name

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

JOBS = """
- job:
    name: named-target
    builders:
      - shell: echo here
"""


@pytest.fixture(scope="module")
def wrapper_image(docker_engine) -> str:
    return build_image(docker_engine.docker_host, offline=True)


def test_name_targets_the_wrapper_on_its_own_port(docker_engine, docker_client, wrapper_image, tmp_path):
    name = unique_name("djt-sync")
    port = free_port()
    password = tmp_path / "admin-password"
    password.write_text("a-long-random-test-password\n")
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    cli.env["DINDJOBS_PASSWORD_FILE"] = str(password)  # no user: the wrapper's admin is meant
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "jobs.yaml").write_text(JOBS)
    try:
        cli.ok("--name", name, "up", "--port", port, "--wait", 180)
        config = cli.json("--name", name, "config")
        assert config["url"] == f"http://127.0.0.1:{port}/"
        assert (config["url_source"], config["user"]) == (f"wrapper {name} (container label)", "admin")
        cli.ok("--name", name, "wait", "--timeout", 180, timeout=240)

        done = cli.run("sync", "--name", name, str(jobs), "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        assert result["plan"]["url"] == f"http://127.0.0.1:{port}/"
        assert [(i["name"], i["result"]) for i in result["result"]["items"]] == [("named-target", "ok")]
        assert cli.run("--name", name, "sync", str(jobs), "--plan").returncode == 0  # it is there

        # An explicit URL still wins, and a disagreeing wrapper name is a warning, not silence.
        other = f"http://127.0.0.1:{free_port()}/"
        done = cli.run("--url", other, "--user", "admin", "--name", name, "config", "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["url"] == other
        assert f"warning: using {other} (flag --url), not http://127.0.0.1:{port}/ of wrapper '{name}'" in done.stderr
    finally:
        cleanup(docker_client, name)
