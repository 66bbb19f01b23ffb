"""`dindjobs sync --target/--all-targets`: one job tree, three stand-in Jenkins at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dindjobs.config import Secret, Settings
from dindjobs.errors import ConfigError
from dindjobs.jenkins.client import Jenkins
from dindjobs.jobs.render import render
from dindjobs.targets import parse_vars, resolve_targets
from support.cli import run_cli as run
from support.net import free_port
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER
from support.targets import three_targets

REPO = Path(__file__).resolve().parents[2]

JOBS = """
- job:
    name: team
    project-type: folder
- job-template:
    name: 'team/{component}-build'
    node: '{agent}'
    builders:
      - shell: 'make {component} ENV={env}'
- project:
    name: team
    component: [api, web]
    jobs: ['team/{component}-build']
- job:
    name: standalone
    builders:
      - shell: echo standalone
"""
GLOBAL_DEFAULTS = """
- defaults:
    name: global
    agent: any
    env: dev
"""
EXPECTED = ["standalone", "team", "team/api-build", "team/web-build"]


def client_for(standin) -> Jenkins:
    return Jenkins(Settings(url=standin.url, user=ADMIN_USER, timeout=10, token=Secret(ADMIN_TOKEN, "test")))


def job_names(standin) -> list[str]:
    client = client_for(standin)
    try:
        return sorted(item.name for item in client.list_items().jobs.values())
    finally:
        client.close()


def job_config(standin, name: str) -> str:
    client = client_for(standin)
    try:
        return client.get_job_config(name)
    finally:
        client.close()


@pytest.fixture
def three(standin_factory, clean_env, tmp_path):
    """(ini, YAML directory, {target: stand-in}): see support.targets.three_targets."""
    ini, servers = three_targets(standin_factory, tmp_path)
    yaml_dir = tmp_path / "yaml"
    yaml_dir.mkdir()
    (yaml_dir / "jobs.yaml").write_text(JOBS)
    (yaml_dir / "defaults.yaml").write_text(GLOBAL_DEFAULTS)
    return ini, yaml_dir, servers


def table(out: str) -> list[list[str]]:
    """The rows of the table in ``out`` (header first), cells stripped."""
    return [[cell.strip() for cell in re.split("[│┃]", line)[1:-1]] for line in out.splitlines()
            if line.startswith(("│", "┃"))]


def writes(servers, marks):
    return {name: [r for r in s.requests[marks[name]:] if r.method not in ("GET", "HEAD")]
            for name, s in servers.items()}


def test_cold_sync_to_three_then_a_noop(three, capsys):
    ini, yaml_dir, servers = three
    code, out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))
    assert code == 0, err
    for standin in servers.values():
        assert job_names(standin) == EXPECTED
    rows = table(out)
    assert rows[0] == ["target", "item", "action", "result", "reason"]
    assert sorted(row[0] for row in rows[1:]) == sorted([*servers] * 4)
    for name in servers:
        assert re.search(rf"^{name}: Applied 4, failed 0, skipped 0, unchanged 0\.$", out, re.M), out

    marks = {name: len(s.requests) for name, s in servers.items()}
    code, out, err = run(capsys, "--conf", str(ini), "sync", "--target", "jenkins", "--target", "staging",
                         "--target", "prod", str(yaml_dir))
    assert code == 0, err
    assert writes(servers, marks) == {name: [] for name in servers}
    assert "target" not in out
    assert [line.split(":")[0] for line in out.splitlines()] == ["jenkins", "staging", "prod"]
    assert all("In sync: 4 items unchanged, nothing sent." in line for line in out.splitlines())


def test_per_target_vars_give_each_target_its_own_config(three, capsys):
    ini, yaml_dir, servers = three
    code, _, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))
    assert code == 0, err
    configs = {name: job_config(s, "team/api-build") for name, s in servers.items()}
    assert "<assignedNode>any</assignedNode>" in configs["jenkins"] and "ENV=dev" in configs["jenkins"]
    assert "<assignedNode>stage-agents</assignedNode>" in configs["staging"] and "ENV=staging" in configs["staging"]
    assert "<assignedNode>prod-agents</assignedNode>" in configs["prod"] and "ENV=prod" in configs["prod"]
    # Items that use no variable are the same everywhere.
    assert len({job_config(s, "standalone") for s in servers.values()}) == 1


def test_drift_on_one_target_only_is_listed_for_that_target(three, capsys):
    ini, yaml_dir, servers = three
    assert run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))[0] == 0
    client = client_for(servers["staging"])
    try:
        client.update_job("standalone", client.get_job_config("standalone").replace("echo standalone", "echo edited"))
    finally:
        client.close()

    code, out, _ = run(capsys, "--conf", str(ini), "sync", "--plan", "--all-targets", str(yaml_dir))
    assert code == 2
    assert table(out) == [["target", "item", "action", "reason"],
                          ["staging", "job standalone", "drifted", "changed in Jenkins since the last sync"]]
    assert "-      <command>echo edited</command>" in out
    assert re.search(r"^staging: Plan: 1 drifted \(to restore\), 3 unchanged\.$", out, re.M), out
    assert re.search(r"^prod: Plan: 4 unchanged\.$", out, re.M), out

    code, out, _ = run(capsys, "--conf", str(ini), "sync", "--plan", "--all-targets", "--json", str(yaml_dir))
    data = json.loads(out)
    assert code == 2 and data["exit_code"] == 2
    assert set(data["targets"]) == {"jenkins", "staging", "prod"}
    assert data["targets"]["staging"]["plan"]["in_sync"] is False
    assert data["targets"]["prod"]["plan"]["in_sync"] is True
    assert data["targets"]["prod"]["vars"] == {"agent": "prod-agents", "env": "prod"}


def test_a_target_that_is_down_does_not_stop_the_others(three, capsys, tmp_path):
    ini, yaml_dir, servers = three
    ini.write_text(ini.read_text() + f"\n[gone]\nurl=http://127.0.0.1:{free_port()}/\nuser=admin\npassword=x\n")
    code, out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))
    assert code == 3, err
    for standin in servers.values():
        assert job_names(standin) == EXPECTED
    line = next(line for line in out.splitlines() if line.startswith("gone:"))
    assert line.startswith("gone: FAILED:") and "127.0.0.1" in line
    assert ADMIN_PASSWORD not in out + err


def test_refused_credentials_on_one_target_is_a_partial_failure(three, capsys):
    ini, yaml_dir, servers = three
    ini.write_text(ini.read_text().replace(f"password={ADMIN_PASSWORD}", "password=wrong-password"))
    code, out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", "--json", str(yaml_dir))
    data = json.loads(out)
    assert code == 3 and data["exit_code"] == 3
    assert "error" in data["targets"]["jenkins"] and data["targets"]["jenkins"]["exit_code"] == 1
    assert job_names(servers["jenkins"]) == []
    assert job_names(servers["prod"]) == EXPECTED
    assert "wrong-password" not in out + err


def test_nothing_reachable_or_bad_yaml_is_exit_1(three, capsys, tmp_path):
    ini, yaml_dir, servers = three
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "jobs.yaml").write_text("- job:\n    name: [broken\n")
    marks = {name: len(s.requests) for name, s in servers.items()}
    code, _, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(bad))
    assert code == 1 and "jobs.yaml" in err
    assert all(s.requests[marks[name]:] == [] for name, s in servers.items())

    for standin in servers.values():
        standin.stop()
    code, out, _ = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))
    assert code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == ["jenkins", "staging", "prod"]


def test_one_target_by_name_is_todays_output(three, capsys):
    ini, yaml_dir, servers = three
    code, out, err = run(capsys, "--conf", str(ini), "sync", "--target", "staging", str(yaml_dir))
    assert code == 0, err
    assert table(out)[0] == ["item", "action", "result", "reason"]
    assert job_names(servers["staging"]) == EXPECTED and job_names(servers["prod"]) == []
    assert "<assignedNode>stage-agents</assignedNode>" in job_config(servers["staging"], "team/api-build")


def test_resolution_rules(three, monkeypatch):
    ini, _, servers = three
    monkeypatch.setenv("DINDJOBS_URL", "http://elsewhere.example/")
    targets = resolve_targets(["staging", "jenkins"], False, {"conf": str(ini)})
    assert [t.name for t in targets] == ["staging", "jenkins"]
    # The environment speaks for the default target only.
    assert targets[0].settings.url == servers["staging"].url
    assert targets[1].settings.url == "http://elsewhere.example/"
    assert targets[0].settings.token == Secret(ADMIN_TOKEN, "x")
    assert dict(targets[0].variables) == {"env": "staging", "agent": "stage-agents"}
    monkeypatch.delenv("DINDJOBS_URL")
    with pytest.raises(ConfigError, match="no target 'nowhere'"):
        resolve_targets(["nowhere"], False, {"conf": str(ini)}, wrapper_url=lambda name: None)
    with pytest.raises(ConfigError, match="name one Jenkins, not several"):
        resolve_targets(["staging", "prod"], False, {"conf": str(ini), "url": "http://x/"})
    ini.write_text(ini.read_text() + f"\n[again]\nurl={servers['prod'].url.replace('127.0.0.1', 'localhost')}\n")
    with pytest.raises(ConfigError, match="'prod' and 'again' are the same Jenkins"):
        resolve_targets([], True, {"conf": str(ini)})


def test_a_wrapper_name_is_a_target(three, capsys):
    ini, _, servers = three
    urls = {"ci-b": servers["prod"].url}
    [target] = resolve_targets(["ci-b"], False, {"conf": str(ini)}, wrapper_url=urls.get)
    assert target.settings.url == servers["prod"].url and target.settings.name == "ci-b"
    assert target.settings.url_source == "wrapper ci-b (container label)"


def test_parse_vars():
    assert parse_vars("a=1, b = two\nc=", "here") == (("a", "1"), ("b", "two"), ("c", ""))
    with pytest.raises(ConfigError, match=r"NAME=value pairs, got 'oops' \(here\)"):
        parse_vars("a=1, oops", "here")


def test_example_in_jjb_renders_per_target_and_leaves_the_default_alone():
    example = REPO / "jjb" / "per-target"
    staging = render([example / "deploy.jjb"], variables={"env": "staging", "agent-label": "stage-agents"})
    default = render([example / "deploy.jjb"])
    assert "stage-agents" in staging.as_text() and "stage-agents" not in default.as_text()
    # jjb/ itself (what the demo and e2e tests sync) renders no job of the example.
    assert not any(item.name.startswith("deploy") for item in render([REPO / "jjb"]).items)


def test_a_section_may_name_its_wrapper(tmp_path, clean_env):
    ini = tmp_path / "targets.ini"
    ini.write_text("[jenkins]\nname = ci-a\n\n[b]\nname = ci-b\n")
    urls = {"ci-a": "http://127.0.0.1:18081/", "ci-b": "http://127.0.0.1:18082/"}
    a, b = resolve_targets([], True, {"conf": str(ini)}, wrapper_url=urls.get)
    assert (a.name, a.settings.name, a.settings.url) == ("jenkins", "ci-a", urls["ci-a"])
    assert (b.name, b.settings.name, b.settings.url) == ("b", "ci-b", urls["ci-b"])
