"""`dindjobs sync --target/--all-targets`: one job tree, three stand-in Jenkins at once."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gen import generate
from dindjobs.config import Secret, Settings
from dindjobs.errors import ConfigError
from dindjobs.jenkins.client import Jenkins
from dindjobs.jobs import sync_many
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.lock import SyncLock
from dindjobs.jobs.render import render
from dindjobs.targets import parse_vars, resolve_targets
from support.cli import run_cli as run
from support.net import free_port
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, wait_until
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


def test_timings_say_when_the_targets_started_and_where_each_spent_its_time(three, capsys):
    ini, yaml_dir, servers = three
    code, _out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", "--yes", "--timings", str(yaml_dir))
    assert code == 0, err
    lines = [line for line in err.splitlines() if "dindjobs timings: " in line]
    shared = [json.loads(line.split("timings: ", 1)[1]) for line in lines if line.startswith("dindjobs timings")]
    assert len(shared) == 1 and 0 <= shared[0]["render"] < shared[0]["targets_started"]
    each = {line[1:line.index("]")]: json.loads(line.split("timings: ", 1)[1]) for line in lines if line.startswith("[")}
    assert sorted(each) == sorted(servers)
    for timings in each.values():
        assert timings["read_requests"] >= 1 and 0 < timings["apply"] <= timings["total"]


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


# --- one process per target ----------------------------------------------------------------------------


@pytest.mark.parametrize("death", ["exit", "sigkill"])
def test_a_target_whose_process_dies_is_its_failure_and_the_others_are_applied(three, capsys, monkeypatch, death):
    ini, yaml_dir, servers = three
    real_run_sync = sync_many.run_sync

    def dies_on_staging(settings, *args, **kwargs):
        if settings.url == servers["staging"].url:
            if death == "exit":
                os._exit(5)
            os.kill(os.getpid(), signal.SIGKILL)
        return real_run_sync(settings, *args, **kwargs)
    monkeypatch.setattr(sync_many, "run_sync", dies_on_staging)

    code, out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))
    assert code == 3, err
    assert job_names(servers["jenkins"]) == EXPECTED and job_names(servers["prod"]) == EXPECTED
    assert job_names(servers["staging"]) == []
    how = "exit status 5" if death == "exit" else "killed by SIGKILL"
    assert re.search(rf"^staging: FAILED: its sync process ended before reporting \({how}\); ", out, re.M), out
    assert re.search(r"^prod: Applied 4, failed 0, skipped 0, unchanged 0\.$", out, re.M), out



@pytest.mark.parametrize("fork", [True, False])
def test_each_target_runs_in_a_process_of_its_own_where_there_is_fork(three, capsys, monkeypatch, tmp_path, fork):
    ini, yaml_dir, servers = three
    real_run_sync = sync_many.run_sync
    pids = tmp_path / "pids"

    def noting_the_pid(*args, **kwargs):
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return real_run_sync(*args, **kwargs)
    monkeypatch.setattr(sync_many, "run_sync", noting_the_pid)
    monkeypatch.setattr(sync_many, "fork_available", lambda: fork)

    code, out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))
    assert code == 0, err
    for standin in servers.values():
        assert job_names(standin) == EXPECTED
    ran_in = pids.read_text().split()
    assert len(ran_in) == 3
    if fork:
        assert len(set(ran_in)) == 3 and str(os.getpid()) not in ran_in
    else:
        assert set(ran_in) == {str(os.getpid())}
    for name in servers:  # printed here, from what each target's process sent
        assert f"[{name}] + create folder team: not in Jenkins" in err.splitlines()
        done = [int(m) for m in re.findall(rf"^\[{name}\] \[(\d)/4\] create job .*: ok \(", err, re.M)]
        assert done == [1, 2, 3, 4], err


def test_removals_are_confirmed_here_for_each_target(three, capsys):
    ini, yaml_dir, servers = three
    assert run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))[0] == 0
    (yaml_dir / "jobs.yaml").write_text(JOBS.split("- job:\n    name: standalone")[0])

    code, out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", "--prune", str(yaml_dir))
    assert code == 1, err  # not a terminal: the question cannot be asked, so no target removes anything
    for name, standin in servers.items():
        assert f"{name}: FAILED: 1 item(s) would be removed (--prune) (review with --plan, then confirm with --yes)" \
            in out.splitlines()
        assert "standalone" in job_names(standin)

    code, out, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", "--prune", "--yes", str(yaml_dir))
    assert code == 0, err
    for standin in servers.values():
        assert job_names(standin) == ["team", "team/api-build", "team/web-build"]


def test_plan_as_json_carries_the_diff_of_every_create(three, capsys):
    ini, yaml_dir, servers = three
    code, out, _ = run(capsys, "--conf", str(ini), "sync", "--plan", "--all-targets", "--json", str(yaml_dir))
    assert code == 2
    data = json.loads(out)
    for name in servers:
        items = {item["name"]: item for item in data["targets"][name]["plan"]["items"]}
        assert {item["action"] for item in items.values()} == {"create"}
        assert "+++ yaml/job/standalone" in items["standalone"]["diff"]
        assert re.search(r"^\+ *<command>echo standalone</command>$", items["standalone"]["diff"], re.M)
    prod = {item["name"]: item["diff"] for item in data["targets"]["prod"]["plan"]["items"]}
    assert re.search(r"^\+ *<command>make api ENV=prod</command>$", prod["team/api-build"], re.M)


def test_a_targets_warnings_are_logged_here(three, capsys, caplog):
    ini, yaml_dir, servers = three
    (yaml_dir / "jobs.yaml").write_text("- job:\n    name: stamped\n    wrappers:\n      - timestamps\n")
    with caplog.at_level(logging.WARNING):
        code, _, err = run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))
    assert code == 0, err
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "dindjobs.jobs.sync")
    assert warnings == sorted(f"job stamped: wrapper 'timestamps' needs the timestamper plugin, which {s.url} "
                              "does not have: Jenkins will keep the element but ignore it" for s in servers.values())


def test_plan_as_json_is_the_same_from_target_processes_as_from_threads(three, capsys, monkeypatch):
    ini, yaml_dir, servers = three
    assert run(capsys, "--conf", str(ini), "sync", "--all-targets", str(yaml_dir))[0] == 0
    edited = job_config(servers["staging"], "standalone").replace("echo standalone", "echo edited")
    staging = client_for(servers["staging"])
    staging.update_job("standalone", edited)
    staging.close()
    (yaml_dir / "jobs.yaml").write_text(JOBS.replace("make {component}", "make -j4 {component}")
                                        + "- job:\n    name: added\n")
    plans = {}
    for fork in (True, False):
        monkeypatch.setattr(sync_many, "fork_available", lambda fork=fork: fork)
        code, out, _ = run(capsys, "--conf", str(ini), "sync", "--plan", "--all-targets", "--json", str(yaml_dir))
        assert code == 2
        plans[fork] = json.loads(out)
    assert plans[True] == plans[False]
    actions = {i["name"]: i["action"] for i in plans[True]["targets"]["staging"]["plan"]["items"]}
    assert actions == {"added": "create", "standalone": "drifted", "team": "unchanged",
                       "team/api-build": "update", "team/web-build": "update"}

def big_three(three, tmp_path):
    """``three`` with a 510-item tree, long enough to be stopped in the middle."""
    ini, _, servers = three
    return ini, generate(tmp_path / "big", projects=5).path, servers


def sync_all(ini: Path, tree: Path, state: Path) -> subprocess.Popen:
    """``python -m dindjobs sync --all-targets`` as a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINDJOBS_", "JJB_"))}
    env.update(DINDJOBS_STATE_DIR=str(state), XDG_CACHE_HOME=str(state / "cache"))
    return subprocess.Popen([sys.executable, "-m", "dindjobs", "--conf", str(ini), "sync", "--all-targets",
                             str(tree)], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # a process group of its own, as in a terminal


def writing_to_all(ini: Path, tree: Path, state: Path, servers) -> tuple[subprocess.Popen, list[int]]:
    """A ``sync --all-targets`` once it has written to every target, and its three target processes."""
    proc = sync_all(ini, tree, state)
    wait_until(lambda: all(posts(s) >= 20 for s in servers.values()), 120, 0.005, what="writes to every target")
    children = children_of(proc.pid)
    assert len(children) == 3
    return proc, children


def posts(standin) -> int:
    return sum(r.method == "POST" for r in standin.requests)


def children_of(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_finished_by_a_new_sync(ini: Path, tree: Path, state: Path, servers) -> None:
    proc = sync_all(ini, tree, state)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    wanted = {item.name for item in render([tree]).jobs}
    for name, standin in servers.items():
        assert set(job_names(standin)) == wanted, name
        lock = SyncLock(state, standin.url).acquire(timeout=0)  # no lock left behind
        lock.release()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum, code, group", [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, True)])
def test_a_signal_stops_every_target_process_and_a_new_sync_finishes(three, tmp_path, signum, code, group):
    """SIGTERM to dindjobs alone (it stops its children), Ctrl-C as a terminal sends it (to all)."""
    ini, tree, servers = big_three(three, tmp_path)
    state = tmp_path / "state"
    proc, children = writing_to_all(ini, tree, state, servers)
    if group:
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert f"dindjobs: {signal.Signals(signum).name}: stopped; the ledgers are saved." in err
    assert len(re.findall(r"^(jenkins|staging|prod): Applied \d+, .* Interrupted: \d+ not applied\.$", out, re.M)) == 3
    assert not [pid for pid in children if running(pid)]
    for name, standin in servers.items():  # what was created is owned: the rerun adopts nothing
        ledger = Ledger.open(state, standin.url, standin.identity, writable=False)
        assert {n for kind, n, _ in ledger.items() if kind == "job"} == set(job_names(standin)), name
    assert_finished_by_a_new_sync(ini, tree, state, servers)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_the_parent_stops_the_target_processes_and_a_new_sync_finishes(three, tmp_path):
    ini, tree, servers = big_three(three, tmp_path)
    state = tmp_path / "state"
    proc, children = writing_to_all(ini, tree, state, servers)
    proc.kill()
    proc.communicate(timeout=60)
    wait_until(lambda: not any(running(pid) for pid in children), 30, 0.05, what="the target processes to stop")
    assert_finished_by_a_new_sync(ini, tree, state, servers)
