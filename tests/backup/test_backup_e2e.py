"""Backup, destroy, restore on a real engine with the offline wrapper image.

The wrapper gets jobs (one in a folder), build history with logs, a build still running when
the backup starts, and images built in its nested daemon. After `down --volumes` and `restore`,
every file under jobs/ is byte-identical with the same owner and mode, Jenkins reports the same
builds and logs, and the nested daemon has the same image IDs. Damaged archives are rejected
before anything is created.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import zlib

import pytest

from dindjobs.config import Settings, read_secret_file
from dindjobs.jenkins.client import Jenkins
from support.archives import forged_archive
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
        flipped.write_bytes(damaged(data))
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


# A base from the wrapper's static busybox, then an image whose second layer replaces /data
# wholesale (overlay2 marks the new /data opaque with an xattr) and deletes a file (a whiteout).
OPAQUE_IMAGE = r"""set -e
w=$(mktemp -d); mkdir -p $w/base $w/img
cp /bin/busybox $w/base/busybox
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'RUN ["/bin/busybox", "--install", "-s", "/bin"]' > $w/base/Dockerfile
printf '%s\n' 'FROM djt/base' \
  'RUN mkdir -p /data/sub && echo 1 > /data/old1 && echo 2 > /data/sub/old2 && echo x > /gone' \
  'RUN rm -rf /data && mkdir /data && echo n > /data/new && rm /gone' > $w/img/Dockerfile
DOCKER_BUILDKIT=0 docker build -q -t djt/base $w/base >/dev/null 2>&1
DOCKER_BUILDKIT=0 docker build -q -t djt/opaque $w/img >/dev/null 2>&1
"""
IMAGE_FACTS = ("docker image inspect -f '{{.Id}} {{json .RootFS.Layers}}' djt/opaque && "
               "docker run --rm --network none djt/opaque sh -c 'find /data | sort; echo --; ls -A /'")


def kill_when(cli: Cli, args: list, marker: str) -> str:
    """Start `dindjobs ARGS`, SIGKILL it as soon as MARKER appears on its stderr; its stderr so far."""
    process = subprocess.Popen([sys.executable, "-m", "dindjobs", *map(str, args)], env=cli.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in process.stderr:
            seen.append(line)
            if marker in line:
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.wait(timeout=120)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    return "".join(seen)


def test_nested_images_round_trip_exactly_and_a_killed_restore_can_be_retried(docker_engine, docker_client,
                                                                             wrapper_image, tmp_path):
    name, port = unique_name("djt-img"), free_port()
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    archive = tmp_path / "images.tar.gz"
    try:
        cli.ok("--name", name, "up", "--port", port, "--wait", 180)
        exec_out(docker_client, name, OPAQUE_IMAGE)
        before = exec_out(docker_client, name, IMAGE_FACTS)
        listing = before.split("\n", 1)[1]
        assert listing.split("--")[0].split() == ["/data", "/data/new"] and "gone" not in listing.split()

        old = os.umask(0o022)
        try:
            done = cli.ok("--name", name, "backup", "--with-images", "-o", archive, timeout=900)
        finally:
            os.umask(old)
        assert archive.stat().st_mode & 0o777 == 0o600 and "mode 0600" in done.stdout
        cli.ok("--name", name, "down", "--volumes", "--yes")

        # A restore killed while it extracts leaves its labelled helper holding the volumes.
        for retry in (["down", "--volumes", "--yes"], ["restore", archive, "--force", "--json"]):
            kill_when(cli, ["--name", name, "restore", archive], "restoring /var/jenkins_home")
            assert docker_client.containers.get(f"{name}-restore").labels["io.dindjobs.role"] == "restore"
            done = cli.ok("--name", name, *retry, timeout=900)
            assert f"removed {name}-restore" in done.stderr
        assert [c.name for c in docker_client.containers.list(all=True, filters={"name": name})] == [name]
        restored = json.loads(done.stdout)
        assert restored["password_file"] == str(tmp_path / "state" / name / "admin-password")

        after = exec_out(docker_client, name, IMAGE_FACTS)
        assert after == before  # image ID, every layer's diff ID, and exactly the new /data, no /gone
    finally:
        cleanup(docker_client, name)


def test_a_killed_backup_does_not_leave_jenkins_quieting_down(docker_engine, docker_client, wrapper_image, tmp_path):
    name, port = unique_name("djt-qd"), free_port()
    cli = Cli(docker_engine.docker_host, tmp_path / "state")
    url = f"http://127.0.0.1:{port}/"
    try:
        cli.ok("--name", name, "up", "--port", port, "--wait", 180)
        cli.ok("--name", name, "--url", url, "wait", "--timeout", 120)
        password = read_secret_file(tmp_path / "state" / name / "admin-password", "admin password")
        client = Jenkins(Settings(url=url, user="admin", password=password, timeout=10))
        client.create_job("slow", job_xml("sleep 30"))
        client.trigger("slow")
        wait_until(lambda: client.running_builds() == ["slow #1"], timeout=60, what="slow #1 running")

        kill_when(cli, ["--name", name, "backup", "-o", tmp_path / "b.tar.gz"], "Jenkins is quieting down")
        assert client.quieting_down() is True  # what the killed backup left behind
        checks = {c["id"]: c for c in json.loads(cli.run("--name", name, "doctor", "--json").stdout)["checks"]}
        assert checks["jenkins-quiet-down"]["status"] == "warn" and "killed" in checks["jenkins-quiet-down"]["detail"]

        report = cli.json("--name", name, "status")
        assert report["quiet_down"]["undone"] is True
        assert client.quieting_down() is False
        assert cli.json("--name", name, "status")["quiet_down"] == {
            "quieting_down": False, "ours": False, "backup_pid": None, "undone": False, "error": None}
        client.close()
    finally:
        cleanup(docker_client, name)


def test_an_archive_that_writes_through_a_link_is_refused_with_nothing_created(docker_engine, docker_client, tmp_path):
    name = unique_name("djt-link")
    evil = tmp_path / "evil.tar.gz"
    forged_archive(evil, [("jenkins_home", tarfile.DIRTYPE, "", b""),
                          ("jenkins_home/x", tarfile.SYMTYPE, "/var/lib/docker", b""),
                          ("jenkins_home/x/FILE", tarfile.REGTYPE, "", b"planted in the other volume")])
    done = Cli(docker_engine.docker_host, tmp_path / "state").run("--name", name, "restore", evil)
    assert done.returncode == 1, done.stderr
    assert "symlink 'jenkins_home/x' -> '/var/lib/docker' leaves its volume" in done.stderr
    assert "nothing was changed" in done.stderr
    assert docker_client.containers.list(all=True, filters={"name": name}) == []
    assert docker_client.volumes.list(filters={"name": name}) == []
    assert not (tmp_path / "state" / name).exists()


def damaged(data: bytes) -> bytes:
    """``data`` (gzip) with one bit flipped from the middle on, at the first place where the flip
    changes what it decompresses to. Some bits of a deflate stream are padding that no decoder
    reads (after a flush, up to the next byte): flipping one of those damages nothing, and a
    restore of it is right to go ahead."""
    for position in range(len(data) // 2, len(data) - 8):
        flipped = bytearray(data)
        flipped[position] ^= 0x04
        try:
            if gzip.decompress(bytes(flipped)) != gzip.decompress(data):
                return bytes(flipped)
        except (OSError, EOFError, zlib.error):
            return bytes(flipped)
    raise AssertionError("no bit flip damaged the archive")
