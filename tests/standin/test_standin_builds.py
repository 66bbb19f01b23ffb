"""Builds: shell steps, results, stop, environment, logs, concurrency and persistence."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import pytest

from dindjobs.standin.runs import Run
from support.standin_fixtures import ADMIN_TOKEN, ADMIN_USER, Client, job_xml, wait_until


@pytest.fixture
def c(standin) -> Client:
    return Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))


def create(c: Client, name: str, xml: str) -> None:
    r = c.post("createItem", params={"name": name}, data=xml.encode(), headers={"Content-Type": "application/xml"})
    assert r.status_code == 200, r.headers.get("X-Error")


def start(c: Client, path: str, **params) -> int:
    """Trigger ``path`` (e.g. "job/a/") and return the started build's number."""
    r = c.post(path + ("buildWithParameters" if params else "build"), params=params or None)
    assert r.status_code == 201
    qid = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    return wait_until(lambda: c.get(f"queue/item/{qid}/api/json").json().get("executable"))["number"]


def finish(c: Client, path: str, number: int) -> dict:
    return wait_until(lambda: (lambda b: b if not b["inProgress"] else None)(
        c.get(f"{path}{number}/api/json").json()), what=f"{path}{number} to finish")


def test_failing_step_gives_failure_and_the_failing_command_in_the_log(c):
    create(c, "f", job_xml("echo before", "echo step2; false; echo never", "echo not-run"))
    number = start(c, "job/f/")
    build = finish(c, "job/f/", number)
    assert build["result"] == "FAILURE"
    log = c.get(f"job/f/{number}/consoleText").text
    assert "+ echo before\nbefore\n" in log and "+ false\n" in log
    assert "never" not in log and "not-run" not in log
    assert "Build step 'Execute shell' marked build as failure\nFinished: FAILURE\n" in log
    job = c.get("job/f/api/json").json()
    assert job["color"] == "red" and job["lastFailedBuild"]["number"] == number
    assert job["lastSuccessfulBuild"] is None


def test_long_step_can_be_stopped_and_ends_aborted(c, standin):
    pidfile = standin.home / "child.pid"
    create(c, "slow", job_xml(f"sleep 30 &\necho $! > {pidfile}\nsleep 30\necho never"))
    number = start(c, "job/slow/")
    wait_until(lambda: "+ sleep 30" in c.get(f"job/slow/{number}/consoleText").text, what="step running")
    assert c.get(f"job/slow/{number}/api/json").json()["building"] is True
    assert c.get("job/slow/api/json").json()["color"] == "notbuilt_anime"
    r = c.post(f"job/slow/{number}/stop")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/job/slow/{number}/")
    build = finish(c, "job/slow/", number)
    assert build["result"] == "ABORTED" and build["building"] is False
    log = c.get(f"job/slow/{number}/consoleText").text
    assert "never" not in log
    assert log.endswith(f"Build was aborted\nAborted by {ADMIN_USER}\nFinished: ABORTED\n")
    assert c.get("job/slow/api/json").json()["color"] == "aborted"
    assert c.post(f"job/slow/{number}/stop").status_code == 302  # stopping a finished build: a no-op
    # The whole process group was killed, the step's background child included.
    wait_until(lambda: not _alive(int(pidfile.read_text())), what="background child to die")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_environment_workspace_and_server_user(c, standin):
    import getpass

    create(c, "env", job_xml(
        'echo "N=$BUILD_NUMBER ID=$BUILD_ID NAME=$JOB_NAME BASE=$JOB_BASE_NAME TAG=$BUILD_TAG"\n'
        'echo "WS=$WORKSPACE PWD=$(pwd) USER=$(id -un) P=$P"\n'
        'echo "URL=$BUILD_URL JURL=$JENKINS_URL"\n'
        'echo data > file.txt', params=[("P", "default")]))
    c.post("createItem", data={"name": "dir", "mode": "com.cloudbees.hudson.plugins.folder.Folder"})
    create_in = c.post("job/dir/createItem", params={"name": "env"}, data=job_xml("echo $JOB_NAME $BUILD_TAG"),
                       headers={"Content-Type": "text/xml"})
    assert create_in.status_code == 200
    number = start(c, "job/env/", P="given value")
    finish(c, "job/env/", number)
    log = c.get(f"job/env/{number}/consoleText").text
    ws = standin.home / "workspace" / "env"
    assert f"N={number} ID={number} NAME=env BASE=env TAG=jenkins-env-{number}" in log
    assert f"WS={ws} PWD={ws} USER={getpass.getuser()} P=given value" in log
    assert f"URL={standin.url}job/env/{number}/ JURL={standin.url}" in log
    assert (ws / "file.txt").read_text() == "data\n"
    nested = start(c, "job/dir/job/env/")
    finish(c, "job/dir/job/env/", nested)
    assert f"dir/env jenkins-dir-env-{nested}" in c.get(f"job/dir/job/env/{nested}/consoleText").text
    assert (standin.home / "workspace" / "dir" / "env").is_dir()


def test_shebang_step_runs_with_its_interpreter(c):
    create(c, "py", job_xml("#!/bin/sh -e\necho \"shell=$0\"\nfalse\necho unreachable"))
    number = start(c, "job/py/")
    assert finish(c, "job/py/", number)["result"] == "FAILURE"
    log = c.get(f"job/py/{number}/consoleText").text
    assert "$ /bin/sh -e /" in log and "unreachable" not in log and "+ false" not in log


def test_progressive_text_offsets_count_hidden_annotations(c):
    create(c, "log", job_xml("echo first; sleep 0.3; echo second"))
    number = start(c, "job/log/")
    text, offset, more = "", 0, True
    while more:
        r = c.get(f"job/log/{number}/logText/progressiveText", params={"start": offset})
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain;charset=utf-8"
        text += r.text
        offset = int(r.headers["X-Text-Size"])
        more = r.headers.get("X-More-Data") == "true"
    assert text == c.get(f"job/log/{number}/consoleText").text
    assert "first\n" in text and "second\n" in text and text.endswith("Finished: SUCCESS\n")
    # The byte offset includes the hidden annotation Jenkins writes on "Started by user".
    assert offset > len(text.encode())
    # A start beyond the end restarts from 0.
    assert c.get(f"job/log/{number}/logText/progressiveText", params={"start": 10**9}).text == text


def test_concurrent_builds_only_when_the_job_allows_them(standin_factory):
    standin = standin_factory(executors=3)
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(c, "serial", job_xml("sleep 30"))
    create(c, "parallel", job_xml("sleep 30", params=[("I", "0")], concurrent=True))
    first = start(c, "job/parallel/", I="1")
    second = start(c, "job/parallel/", I="2")
    assert {first, second} == {1, 2}
    running = [b for b in (c.get(f"job/parallel/{n}/api/json").json() for n in (1, 2)) if b["building"]]
    assert len(running) == 2
    ws = [b.workspace.name for b in standin.model.find_job("parallel").running()]
    assert sorted(ws) == ["parallel", "parallel@2"]  # concurrent builds get their own workspace
    assert start(c, "job/serial/") == 1
    r = c.post("job/serial/build", params={"delay": "0sec"})
    qid = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    item = wait_until(lambda: (lambda i: i if i["blocked"] else None)(c.get(f"queue/item/{qid}/api/json").json()))
    assert item["why"].startswith("Build #1 is already in progress")
    for path in ("job/parallel/1/stop", "job/parallel/2/stop", "job/serial/1/stop"):
        c.post(path)
    assert wait_until(lambda: c.get(f"queue/item/{qid}/api/json").json().get("executable"))["number"] == 2
    c.post("job/serial/2/stop")


def test_executors_limit_running_builds(standin_factory):
    standin = standin_factory(executors=1)
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(c, "a", job_xml("sleep 30"))
    create(c, "b", job_xml("true"))
    start(c, "job/a/")
    r = c.post("job/b/build")
    qid = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    item = wait_until(lambda: (lambda i: i if i["buildable"] else None)(c.get(f"queue/item/{qid}/api/json").json()))
    assert item["why"] == "Waiting for next available executor" and "pending" in item
    assert [i["id"] for i in c.get("queue/api/json").json()["items"]] == [qid]
    c.post("job/a/1/stop")
    assert wait_until(lambda: c.get(f"queue/item/{qid}/api/json").json().get("executable"))["number"] == 1


def test_history_persists_in_jenkins_layout_across_restart(c, standin):
    create(c, "kept", job_xml("echo persisted"))
    for _ in range(2):
        finish(c, "job/kept/", start(c, "job/kept/"))
    job_dir = standin.home / "jobs" / "kept"
    assert (job_dir / "nextBuildNumber").read_text().strip() == "3"
    build_xml = ET.parse(job_dir / "builds" / "2" / "build.xml").getroot()
    assert build_xml.findtext("result") == "SUCCESS" and build_xml.findtext("number") is None
    assert (job_dir / "builds" / "2" / "log").read_bytes().endswith(b"Finished: SUCCESS\n")
    standin.restart()
    job = c.get("job/kept/api/json").json()
    assert [b["number"] for b in job["builds"]] == [2, 1] and job["nextBuildNumber"] == 3
    assert job["lastSuccessfulBuild"]["number"] == 2 and job["color"] == "blue"
    assert "persisted" in c.get("job/kept/1/consoleText").text
    assert start(c, "job/kept/") == 3


def test_build_cut_short_by_a_restart_is_aborted(c, standin):
    create(c, "cut", job_xml("sleep 30"))
    number = start(c, "job/cut/")
    standin.restart()
    build = c.get(f"job/cut/{number}/api/json").json()
    assert build["result"] == "ABORTED" and build["inProgress"] is False
    assert c.get(f"job/cut/{number}/consoleText").text.endswith("Finished: ABORTED\n")


def test_disabled_job_cannot_be_built_and_leaves_the_queue(standin_factory):
    standin = standin_factory(quiet_period=30)
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(c, "d", job_xml("true"))
    r = c.post("job/d/build")
    qid = int(r.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    assert c.get("job/d/api/json").json()["inQueue"] is True
    c.post("job/d/disable")
    item = c.get(f"queue/item/{qid}/api/json").json()
    assert item["cancelled"] is True and item["executable"] is None
    job = c.get("job/d/api/json").json()
    assert job["inQueue"] is False and job["buildable"] is False and job["color"] == "disabled"
    r = c.post("job/d/build")
    assert r.status_code == 409 and "Oops!" in r.text


def test_trigger_token_allows_get_and_wrong_token_is_403(standin):
    xml = job_xml("true").replace("<keepDependencies>", "<authToken>s3cret</authToken><keepDependencies>")
    admin = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(admin, "t", xml)
    r = admin.get("job/t/build", params={"token": "s3cret"})
    assert r.status_code == 201
    assert admin.get("job/t/build", params={"token": "nope"}).status_code == 403
    assert all("s3cret" not in e.query for e in standin.requests)  # the request log hides it


def test_console_names_the_cause_as_soon_as_the_build_is_visible(c, monkeypatch):
    """A client that reads consoleText right after the queue item left must see the cause line,
    even when the executor thread has not begun running the build yet."""
    gate = threading.Event()
    execute = Run.execute

    def held(self, *args, **kwargs):
        gate.wait(10)
        return execute(self, *args, **kwargs)

    monkeypatch.setattr(Run, "execute", held)
    create(c, "early", job_xml("echo hi"))
    number = start(c, "job/early/")
    try:
        assert c.get(f"job/early/{number}/consoleText").text.startswith("Started by user admin\n")
    finally:
        gate.set()
    assert finish(c, "job/early/", number)["result"] == "SUCCESS"
