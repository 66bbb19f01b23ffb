"""Honest identity: output says whether a real Jenkins or the dindjobs stand-in answered."""

from __future__ import annotations

import json

from dindjobs.config import Secret, Settings
from dindjobs.doctor.checks import check_jenkins_security
from dindjobs.doctor.facts import gather_jenkins
from dindjobs.jenkins.client import Jenkins
from dindjobs.jenkins.identity import PIPELINE_ON_STANDIN, label_from_headers, server_label
from dindjobs.standin.model import VERSION
from dindjobs.verify.nesting import Nesting
from dindjobs.verify.run import verify
from dindjobs.wrapper.container import probe_http
from support.cli import run_cli as run
from support.standin_fixtures import ADMIN_TOKEN, ADMIN_USER, Client, job_xml

STANDIN_LABEL = f"dindjobs stand-in (Jenkins {VERSION} REST API)"
PIPELINE = ("<flow-definition plugin='workflow-job'><description/><definition class='org.jenkinsci.plugins."
            "workflow.cps.CpsFlowDefinition'><script>node {}</script></definition></flow-definition>")


def test_labels():
    assert server_label("2.580.2", None) == "Jenkins 2.580.2"
    assert server_label("2.580.2", "2.580.2") == "dindjobs stand-in (Jenkins 2.580.2 REST API)"
    assert server_label(None, None) == "Jenkins (version unknown)"
    assert label_from_headers({"Server": "nginx"}) is None
    assert label_from_headers({"X-Jenkins": "2.580.2"}) == "Jenkins 2.580.2"


def test_wait_names_the_standin(standin_env, capsys):
    code, out, err = run(capsys, "wait", "--timeout", "30", "--no-wrapper")
    assert code == 0, err
    assert f"({STANDIN_LABEL}, user {ADMIN_USER}" in out
    code, out, err = run(capsys, "wait", "--timeout", "30", "--no-wrapper", "--json")
    assert json.loads(out)["server"] == STANDIN_LABEL and json.loads(out)["version"] == VERSION


def test_status_probe_names_the_standin(standin):
    probe = probe_http(standin.url, timeout=5)
    assert probe == {"reachable": True, "status": 200, "server": STANDIN_LABEL}


def test_verify_skips_pipelines_on_the_standin_and_never_counts_them(standin, standin_client):
    for name, xml in (("pipe", PIPELINE), ("plain", job_xml("echo plain"))):
        assert standin_client.post(f"createItem?name={name}", data=xml,
                                   headers={"Content-Type": "text/xml"}).status_code == 200
    client = Jenkins(Settings(url=standin.url, user=ADMIN_USER, token=Secret(ADMIN_TOKEN, "test"), timeout=10))
    try:
        report = verify(client, ["pipe"], Nesting(None, "no wrapper in this test"), interval=0.02)
        (pipe,) = report.jobs
        assert pipe.skipped == PIPELINE_ON_STANDIN and not pipe.ok and pipe.build is None
        assert not report.ok and "1 skipped (not run, not counted as proved)" in report.summary_line()
        assert "skipped: running pipelines needs jenkins.war" in pipe.proof_text()
    finally:
        client.close()
    assert Client(standin.url, (ADMIN_USER, ADMIN_TOKEN)).get("job/pipe/api/json").json()["lastBuild"] is None


def test_verify_cli_says_which_server(standin_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DINDJOBS_NAME", "no-such-wrapper-for-identity")
    d = tmp_path / "jobs"
    d.mkdir()
    (d / "p.yaml").write_text("- job:\n    name: pipe\n    project-type: pipeline\n    dsl: 'node {{}}'\n")
    assert run(capsys, "sync", str(d))[0] == 0
    code, out, err = run(capsys, "verify", str(d))
    assert f"on {standin_env.url} ({STANDIN_LABEL})" in err
    assert "skipped: running pipelines needs jenkins.war" in out and code == 1  # nothing proved


def test_doctor_names_the_server(standin, clean_env):
    facts = gather_jenkins(standin.url, Settings(url=standin.url, user=ADMIN_USER,
                                                 token=Secret(ADMIN_TOKEN, "test"), timeout=5), ADMIN_USER, None)
    assert facts.server == STANDIN_LABEL
    check = check_jenkins_security(facts)
    assert check.status == "ok" and check.detail.startswith(f"{STANDIN_LABEL}: security realm on")
