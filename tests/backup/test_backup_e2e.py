"""Backup, destroy, restore on a real engine with the offline wrapper image.

The wrapper gets jobs (one in a folder), build history with logs, a build still running when
the backup starts, and images built in its nested daemon. After `down --volumes` and `restore`,
every file under jobs/ is byte-identical with the same owner and mode, Jenkins reports the same
builds and logs, and the nested daemon has the same image IDs. Damaged archives are rejected
before anything is created.
"""

from __future__ import annotations

import json
import time

import pytest

from dindjobs.config import Settings, read_secret_file
from dindjobs.jenkins.client import Jenkins
from support.dind import build_image, free_port
from support.standin_fixtures import job_xml, wait_until
from support.wrapper_cli import Cli, cleanup, unique_name

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

FOLDER = ("<?xml version='1.1' encoding='UTF-8'?>\n<com.cloudbees.hudson.plugins.folder.Folder>"
          "<properties/></com.cloudbees.hudson.plugins.folder.Folder>")
NESTED_BUILD = ("mkdir -p ctx && cd ctx && printf 'FROM scratch\\nCOPY f /f\\n' > Dockerfile && "
                "echo \"$BUILD_TAG\" > f && docker build -q -t djt-nested:$BUILD_NUMBER . && "
                "echo \"DINDJOBS-EVIDENCE daemon-id=$(docker info --format '{{.ID}}')\" && "
                "echo \"DINDJOBS-EVIDENCE image-id=$(docker image inspect -f '{{.Id}}' djt-nested:$BUILD_NUMBER)\" && "
                "echo \"DINDJOBS-EVIDENCE tag=djt-nested:$BUILD_NUMBER\"")


@pytest.fixture(scope="module")
def wrapper_image(docker_engine) -> str:
    return build_image(docker_engine.docker_host, offline=True)


def exec_out(docker_client, name: str, script: str) -> str:
    result = docker_client.containers.get(name).exec_run(["sh", "-c", script])
    assert result.exit_code == 0, result.output.decode(errors="replace")
    return result.output.decode()


def finished(client: Jenkins, job: str) -> int:
    """How many builds of ``job`` exist, or -1 while one is still running."""
    builds = client.job_builds(all_builds=True).get(job, [])
    return -1 if any(b["building"] for b in builds) else len(builds)


def snapshot(docker_client, name: str, client: Jenkins) -> dict:
    """Files under jobs/ (sha256, owner, mode), builds with their logs, nested image IDs."""
    files = exec_out(docker_client, name, "cd /var/jenkins_home && find jobs -type f -exec sha256sum {} + | sort")
    owners = exec_out(docker_client, name, "cd /var/jenkins_home && find . -path ./workspace -prune -o "
                                           "-exec stat -c '%u:%g %a %n' {} + | sort")
    builds = {}
    for job, numbers in client.job_builds(all_builds=True).items():
        for b in numbers:
            info = client.build_info(job, b["number"])
            builds[f"{job} #{b['number']}"] = (info["result"], info["timestamp"], info["duration"],
                                               client.console_text(job, b["number"]))
    images = exec_out(docker_client, name, "docker image ls -q --no-trunc | sort -u").split()
    return {"files": files, "owners": owners, "builds": builds, "images": images}


def test_backup_destroy_restore_gives_back_the_same_wrapper(docker_engine, docker_client, wrapper_image, tmp_path):
    name, port = unique_name("djt-bk"), free_port()
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    url = f"http://127.0.0.1:{port}/"
    archive = tmp_path / "backup.tar.gz"

    def jenkins() -> Jenkins:
        password = read_secret_file(tmp_path / "state" / name / "admin-password", "admin password")
        return Jenkins(Settings(url=url, user="admin", password=password, timeout=10))

    try:
        cli.ok("--name", name, "up", "--port", port, "--wait", 180)
        cli.ok("--name", name, "--url", url, "wait", "--timeout", 120)
        client = jenkins()
        client.create_job("images", job_xml(NESTED_BUILD))
        client.create_job("team", FOLDER)
        client.create_job("team/logs", job_xml("echo first line", "printf 'ünïcode ✓\\n'", "echo BUILD=$BUILD_NUMBER"))
        client.create_job("slow", job_xml("sleep 4", "echo slept"))
        for job, count in (("images", 1), ("images", 2), ("team/logs", 1)):
            client.trigger(job)
            wait_until(lambda job=job, count=count: finished(client, job) == count, timeout=120, what=f"{job} #{count}")
        client.trigger("slow")
        wait_until(lambda: client.running_builds() == ["slow #1"], timeout=60, what="slow #1 running")

        # The backup waits for slow #1 under quiet-down, so its record is complete in the archive.
        result = cli.json("--name", name, "backup", "--with-images", "-o", archive, timeout=900)
        assert archive.is_file() and result["path"] == str(archive)
        assert result["was_running"] and not result["live"] and result["downtime_seconds"] > 0
        assert [v["role"] for v in result["volumes"]] == ["jenkins-home", "docker-data"]
        assert list(tmp_path.glob(".backup.tar.gz.partial*")) == []

        client.close()
        client = jenkins()
        assert docker_client.containers.get(name).status == "running"
        assert client.quieting_down() is False  # the restart forgot the quiet-down, as it should
        before = snapshot(docker_client, name, client)
        client.close()
        assert before["builds"]["slow #1"][0] == "SUCCESS" and "slept" in before["builds"]["slow #1"][3]
        assert len(before["images"]) == 2 and "ünïcode ✓" in before["builds"]["team/logs #1"][3]
        assert "jobs/team/jobs/logs/config.xml" in before["files"]

        cli.ok("--name", name, "down", "--volumes", "--yes")

        data = archive.read_bytes()
        truncated, flipped = tmp_path / "truncated.tar.gz", tmp_path / "flipped.tar.gz"
        truncated.write_bytes(data[: len(data) * 2 // 3])
        damaged = bytearray(data)
        damaged[len(data) // 2] ^= 0x04
        flipped.write_bytes(bytes(damaged))
        for bad in (truncated, flipped):
            done = cli.run("--name", name, "restore", bad)
            assert done.returncode == 1, done.stderr
            assert f"{bad} is corrupt or truncated" in done.stderr and "nothing was changed" in done.stderr
            assert [c.name for c in docker_client.containers.list(all=True, filters={"name": name})] == []
            assert docker_client.volumes.list(filters={"name": name}) == []

        restored = cli.json("--name", name, "restore", archive, timeout=900)
        assert restored["jobs"] == 3 and restored["builds"] == 4 and restored["nested_images"] == 2
        client = jenkins()  # `down --volumes` forgot the password: restore made a new one
        after = snapshot(docker_client, name, client)
        assert after == before
        assert exec_out(docker_client, name, "stat -c '%u:%g' /var/jenkins_home").strip() == "1000:1000"
        # verify's own proof on the restored builds: the image IDs their logs name are in the
        # restored nested daemon (whose ID is the one the logs name), and not on the host.
        proof = cli.json("--name", name, "--url", url, "verify", "--no-trigger", "--jobs", "images")
        assert '"images"' in json.dumps(proof), proof  # exit 0 (checked by cli.json): every proof held
        # The restored Jenkins builds again, and numbering continues where it was.
        client.trigger("team/logs")
        wait_until(lambda: finished(client, "team/logs") == 2, timeout=120, what="team/logs #2")
        client.close()

        again = cli.run("--name", name, "restore", archive)
        assert again.returncode == 1 and "already exists" in again.stderr and "--force" in again.stderr
    finally:
        cleanup(docker_client, name)


def test_backup_of_a_stopped_wrapper_leaves_it_stopped(docker_engine, docker_client, wrapper_image, tmp_path):
    name, port = unique_name("djt-bk"), free_port()
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    try:
        cli.ok("--name", name, "up", "--port", port, "--wait", 180)
        docker_client.containers.get(name).stop(timeout=60)
        started = time.monotonic()
        result = cli.json("--name", name, "backup", "-o", tmp_path / "b.tar.gz", "--live")
        assert result["downtime_seconds"] is None and not result["was_running"] and not result["live"]
        assert docker_client.containers.get(name).status == "exited"
        assert time.monotonic() - started < 600
        refused = cli.run("--name", name, "backup", "-o", tmp_path / "c.tar.gz", "--live", "--with-images")
        assert refused.returncode == 1 and "--live cannot be combined with --with-images" in refused.stderr
        assert not (tmp_path / "c.tar.gz").exists()
    finally:
        cleanup(docker_client, name)
