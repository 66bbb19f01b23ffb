"""The field's clients, unmodified, against the stand-in: python-jenkins 1.8.3 and JJB 6.5's CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import jenkins
import pytest

from dindjobs.standin.model import VERSION
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, job_xml, wait_until

JENKINS_JOBS = str(Path(sys.executable).with_name("jenkins-jobs"))


def canonical(text: str) -> str:
    """XML compared by meaning (declarations and formatting aside)."""
    root = ET.fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    for elem in root.iter():
        if elem.text is not None and not elem.text.strip():
            elem.text = None
        elem.tail = None
    return ET.canonicalize(ET.tostring(root, encoding="unicode"))


def test_python_jenkins_job_lifecycle(standin):
    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_PASSWORD, timeout=10)
    me = server.get_whoami()
    assert me["id"] == ADMIN_USER and me["_class"] == "hudson.model.User"
    assert server.get_version() == VERSION
    assert server.wait_for_normal_op(15) is True
    server.create_folder("team")
    server.create_folder("team/nested")
    server.create_job("team/nested/build", job_xml("echo one"))
    server.create_job("top", job_xml("echo top"))
    assert server.job_exists("team/nested/build") and not server.job_exists("team/nested/nope")
    server.reconfig_job("team/nested/build", job_xml("echo two", description="reconfigured"))
    config = server.get_job_config("team/nested/build")
    assert "reconfigured" in config and "echo two" in config
    assert canonical(config) == canonical(job_xml("echo two", description="reconfigured"))
    with pytest.raises(jenkins.JenkinsException, match="already exists"):
        server.create_job("top", job_xml())
    with pytest.raises(jenkins.JenkinsException, match="folder for the job does not exist"):
        server.create_job("missing/job", job_xml())
    with pytest.raises(jenkins.NotFoundException):
        server.reconfig_job("nope", job_xml())
    jobs = {j["fullname"]: j for j in server.get_all_jobs()}
    assert sorted(jobs) == ["team", "team/nested", "team/nested/build", "top"]
    assert jobs["team/nested/build"]["color"] == "notbuilt" and "color" not in jobs["team"]
    assert [j["fullname"] for j in server.get_all_jobs(folder_depth=0)] == ["team", "top"]
    info = server.get_job_info("team/nested/build")
    assert info["fullName"] == "team/nested/build" and info["nextBuildNumber"] == 1
    server.disable_job("top")
    assert server.get_job_info("top")["color"] == "disabled"
    server.enable_job("top")
    server.delete_job("team")  # a folder takes its children with it
    assert not server.job_exists("team/nested/build")
    assert [j["fullname"] for j in server.get_all_jobs()] == ["top"]
    assert not (standin.home / "jobs" / "team").exists()
    server.quiet_down()  # POST quietDown, follows the 302 to the dashboard, re-reads api/json
    assert server.get_info()["quietingDown"] is True


def test_python_jenkins_build_queue_and_console(standin):
    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_PASSWORD, timeout=10)
    server.create_job("p", job_xml('echo "hello $WHO from $JOB_NAME #$BUILD_NUMBER"', params=[("WHO", "nobody")]))
    qid = server.build_job("p", {"WHO": "python-jenkins"})
    item = wait_until(lambda: (lambda i: i if i.get("executable") else None)(server.get_queue_item(qid)))
    number = item["executable"]["number"]
    assert item["task"]["name"] == "p" and "\nWHO=python-jenkins" == item["params"]
    info = wait_until(lambda: (lambda b: b if not b["inProgress"] else None)(server.get_build_info("p", number)))
    assert (info["result"], info["building"], info["number"], info["queueId"]) == ("SUCCESS", False, 1, qid)
    assert info["duration"] > 0 and info["timestamp"] > 0
    assert info["url"] == f"{standin.url}job/p/1/"
    params = [a for a in info["actions"] if a.get("_class") == "hudson.model.ParametersAction"][0]
    assert params["parameters"] == [{"_class": "hudson.model.StringParameterValue", "name": "WHO",
                                     "value": "python-jenkins"}]
    console = server.get_build_console_output("p", number)
    assert "hello python-jenkins from p #1" in console and console.endswith("Finished: SUCCESS\n")
    last = server.get_job_info("p")
    assert last["lastSuccessfulBuild"]["number"] == 1 and last["color"] == "blue"
    with pytest.raises(jenkins.JenkinsException, match="does not exist"):
        server.get_build_info("p", 99)
    server.delete_job("p")
    with pytest.raises(jenkins.JenkinsException, match=r"queue number\[999\] does not exist"):
        server.get_queue_item(999)


def test_python_jenkins_stale_crumb_after_restart(standin):
    """python-jenkins' documented failure: it keeps its crumb, which dies with the session."""
    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_PASSWORD, timeout=10)
    server.create_job("a", job_xml())
    old_session = standin.session
    standin.restart()
    assert standin.session != old_session
    with pytest.raises(jenkins.JenkinsException, match=r"(?s)\[403\]: Forbidden\n.*No valid crumb"):
        server.create_job("b", job_xml())
    server.crumb = None  # the known workaround: fetch a new crumb
    server.create_job("b", job_xml())
    assert server.job_exists("a") and server.job_exists("b")  # jobs survived the restart
    # API tokens need no crumb, so a token client never meets this.
    token_client = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN, timeout=10)
    token_client.get_whoami()
    standin.restart()
    token_client.create_job("c", job_xml())
    assert token_client.job_exists("c")


def test_python_jenkins_waiter_on_fresh_client_fails_without_anonymous_read(standin):
    # The contract's note: get_version() is anonymous on a fresh client, so the waiter never
    # succeeds against a locked-down controller...
    fresh = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_PASSWORD, timeout=10)
    with pytest.raises(jenkins.BadHTTPException):
        fresh.get_version()
    # ...until an authenticated call has been made on that client.
    fresh.get_whoami()
    assert fresh.get_version() == VERSION


JJB_DEFAULTS = """\
- defaults:
    name: global
    description: 'Managed by the stand-in test.'
    concurrent: false
"""

JJB_JOBS = """\
- job:
    name: team
    project-type: folder

- job:
    name: team/libs
    project-type: folder

- job-template:
    name: 'team/libs/build-{lib}'
    parameters:
      - string:
          name: VERSION
          default: '{version}'
    builders:
      - shell: 'echo "building {lib} $VERSION"'

- project:
    name: libs
    lib:
      - alpha:
          version: '1.0'
      - beta:
          version: '2.0'
    jobs:
      - 'team/libs/build-{lib}'

- job:
    name: standalone
    builders:
      - shell: |
          echo "one"
          echo "two"

- view:
    name: team-view
    view-type: list
    regex: 'team/.*'
    recurse: true
"""


@pytest.fixture
def jjb(tmp_path, standin):
    """Run the real ``jenkins-jobs`` CLI against ``standin`` with its own ini and cache."""
    ini = tmp_path / "jenkins_jobs.ini"
    ini.write_text(textwrap.dedent(f"""\
        [job_builder]
        allow_empty_variables = True
        [jenkins]
        url = {standin.url}
        user = {ADMIN_USER}
        password = {ADMIN_PASSWORD}
        query_plugins_info = False
        """))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "jjb-cache"), HOME=str(tmp_path))

    def run(*args: str) -> subprocess.CompletedProcess:
        result = subprocess.run([JENKINS_JOBS, "--conf", str(ini), *args], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    return run


def test_jjb_update_folders_templates_and_views(jjb, standin, tmp_path):
    src = tmp_path / "jjb"
    src.mkdir()
    (src / "defaults.yaml").write_text(JJB_DEFAULTS)
    (src / "jobs.yaml").write_text(JJB_JOBS)
    expected_dir = tmp_path / "expected"
    jjb("test", "--config-xml", "-o", str(expected_dir), str(src))
    jjb("update", str(src))

    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN, timeout=10)
    names = sorted(j["fullname"] for j in server.get_all_jobs())
    assert names == ["standalone", "team", "team/libs", "team/libs/build-alpha", "team/libs/build-beta"]
    for name in names:
        expected = (expected_dir / name / "config.xml").read_text()
        assert canonical(server.get_job_config(name)) == canonical(expected), name
    view = server.get_view_config("team-view")
    assert "<includeRegex>team/.*</includeRegex>" in view
    shown = [j["name"] for j in standin_get(standin, "view/team-view/api/json")["jobs"]]
    assert shown == ["build-alpha", "build-beta", "libs"]  # full names matched: "team" is not "team/.*"

    # Push again with the same cache: nothing is written. Then change one job: only it is.
    writes = len(standin.writes())
    jjb("update", str(src))
    assert len(standin.writes()) == writes
    (src / "jobs.yaml").write_text(JJB_JOBS.replace('echo "one"', 'echo "uno"'))
    jjb("update", str(src))
    posted = [r.path for r in standin.writes()[writes:]]
    assert posted == ["/job/standalone/config.xml"]
    assert "uno" in server.get_job_config("standalone")

    # The pushed jobs run: a templated, parameterized job in a nested folder.
    qid = server.build_job("team/libs/build-beta", {"VERSION": "2.1"})
    number = wait_until(lambda: server.get_queue_item(qid).get("executable"))["number"]
    wait_until(lambda: not server.get_build_info("team/libs/build-beta", number)["inProgress"])
    assert "building beta 2.1" in server.get_build_console_output("team/libs/build-beta", number)


def test_jjb_delete_old_removes_only_managed_jobs(jjb, standin, tmp_path):
    src = tmp_path / "jjb"
    src.mkdir()
    (src / "jobs.yaml").write_text("- job:\n    name: keep\n- job:\n    name: drop\n")
    jjb("update", str(src))
    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN, timeout=10)
    server.create_job("handmade", job_xml())  # no JJB marker in its description
    (src / "jobs.yaml").write_text("- job:\n    name: keep\n")
    jjb("update", "--delete-old", str(src))
    assert sorted(j["name"] for j in server.get_all_jobs()) == ["handmade", "keep"]


def standin_get(standin, path: str) -> dict:
    import requests

    r = requests.get(standin.url + path, auth=(ADMIN_USER, ADMIN_TOKEN), timeout=10)
    r.raise_for_status()
    return r.json()
