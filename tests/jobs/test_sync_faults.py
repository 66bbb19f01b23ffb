"""`dindjobs sync` under faults, with real processes against the stand-in (no fake client).

- kill -9 of a 500-job sync at 20 moments, then a rerun without one project and
  ``--prune --yes``: the prune removes exactly that project's jobs, the server equals the YAML;
- 20 restarts of the stand-in at different moments of a cold sync: exit 0, server equals YAML;
- two syncs at once (different trees, then the same tree): both exit 0, one waited, the
  ledger owns every item of both;
- SIGTERM / SIGINT in the middle: exit 143 / 130, the ledger owns what was created.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.gen import generate
from dindjobs.config import Secret, Settings
from dindjobs.jenkins.client import Jenkins
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.plan import make_plan
from dindjobs.jobs.render import render
from support.net import free_port
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, wait_until

REMOVED = "proj004"  # the project the rerun after a kill no longer defines


def sync(standin, state: Path, *args: str, password: bool = False) -> subprocess.Popen:
    """``python -m dindjobs sync ARGS`` against ``standin``, as its own process (with the admin's
    API token, or with its password: then every POST needs a crumb of the current session)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINDJOBS_", "JJB_"))}
    env.update(DINDJOBS_URL=standin.url, DINDJOBS_USER=ADMIN_USER, DINDJOBS_STATE_DIR=str(state))
    env.update({"DINDJOBS_PASSWORD": ADMIN_PASSWORD} if password else {"DINDJOBS_TOKEN": ADMIN_TOKEN})
    return subprocess.Popen([sys.executable, "-m", "dindjobs", "sync", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def client_for(standin) -> Jenkins:
    return Jenkins(Settings(url=standin.url, user=ADMIN_USER, token=Secret(ADMIN_TOKEN, "test"), timeout=10))


def server_names(standin) -> set[tuple[str, str]]:
    client = client_for(standin)
    try:
        listing = client.list_items()
    finally:
        client.close()
    views = {("view", name) for name in listing.views if name != "all"}
    return {("job", item.name) for item in listing.jobs.values()} | views


def yaml_names(rendered) -> set[tuple[str, str]]:
    return {(item.kind, item.name) for item in rendered.items}


def owned(standin, state: Path) -> set[tuple[str, str]]:
    ledger = Ledger.open(state, standin.url, standin.identity, writable=False)
    return {(kind, name) for kind, name, _ in ledger.items()}


def assert_server_equals_yaml(standin, rendered, state: Path) -> None:
    """Same names, and a plan against the server finds nothing to do (contents equal too)."""
    assert server_names(standin) == yaml_names(rendered)
    client = client_for(standin)
    try:
        plan, _ = make_plan(rendered, client, ledger_for=lambda url, identity: Ledger.open(
            state, url, identity, writable=False))
    finally:
        client.close()
    assert not plan.pending, plan.summary_line()


def writes(standin) -> int:
    return sum(r.method == "POST" for r in standin.requests)


def without_project(src: Path, dest: Path, project: str) -> Path:
    dest.mkdir()
    for path in src.iterdir():
        text = path.read_text()
        if path.name == "projects.yaml":
            blocks = text.split("- project:\n")
            text = "".join("- project:\n" + b for b in blocks[1:] if f"name: {project}\n" not in b)
        (dest / path.name).write_text(text)
    return dest


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """The 500-job tree, the same without one project, and both rendered."""
    root = tmp_path_factory.mktemp("trees")
    full = generate(root / "full", projects=5).path
    smaller = without_project(full, root / "smaller", REMOVED)
    return full, smaller, render([smaller])


# --- kill -9 ---------------------------------------------------------------------------------------

KILL_MOMENTS = [i * 26 for i in range(20)]  # POSTs seen by the stand-in when the sync is killed (0: planning)


@pytest.mark.parametrize("moment", KILL_MOMENTS)
def test_kill_9_then_prune_removes_exactly_the_dropped_project(standin_factory, trees, tmp_path, moment):
    full, smaller, rendered = trees
    standin = standin_factory()
    state = tmp_path / "state"
    proc = sync(standin, state, str(full), "--workers", "8")
    if moment == 0:
        wait_until(lambda: any(r.path.startswith("/api/json") for r in standin.requests), 60, what="planning")
    else:
        wait_until(lambda: writes(standin) >= moment or proc.poll() is not None, 60, 0.002, what="writes")
    proc.kill()
    proc.wait()
    before = server_names(standin)
    dropped = {name for kind, name in before if kind == "job" and name.startswith(f"team4/{REMOVED}-")}

    code, out, err = finish(sync(standin, state, str(smaller), "--prune", "--yes", "--force", "--json",
                                 "--workers", "8"))
    assert code == 0, err[-2000:]
    items = json.loads(out)["result"]["items"]
    assert {i["name"] for i in items if i["action"] == "delete" and i["result"] == "ok"} == dropped
    assert all(i["result"] == "ok" for i in items)
    if KILL_MOMENTS.index(moment) % 4:
        assert server_names(standin) == yaml_names(rendered)
    else:  # contents too, on every 4th moment (a full plan costs a config read per item)
        assert_server_equals_yaml(standin, rendered, state)
    assert owned(standin, state) == yaml_names(rendered)


# --- restarts ------------------------------------------------------------------------------------------

RESTART_MOMENTS = [round(i * 1.8) for i in range(20)]  # POSTs seen when the restart starts (0: planning)


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    tree = generate(tmp_path_factory.mktemp("small"), projects=2, templates=25, folders=2).path
    return tree, render([tree])


@pytest.mark.parametrize("moment", RESTART_MOMENTS)
def test_a_restart_during_a_cold_sync_is_ridden_out(standin_factory, small_tree, tmp_path, moment):
    tree, rendered = small_tree
    # Every other restart also closes the port for a while: connections are refused, not answered 503.
    standin = standin_factory(restart_delay=0.3, restart_down=0.3 if moment % 4 else 0.0)
    state = tmp_path / "state"
    session = standin.session
    # Half of the runs use the password: the crumb of the old session must be renewed.
    password = RESTART_MOMENTS.index(moment) % 2 == 1
    proc = sync(standin, state, str(tree), "--workers", "4", password=password)
    if moment == 0:
        wait_until(lambda: any(r.path.startswith("/api/json") for r in standin.requests), 60, what="planning")
    else:
        wait_until(lambda: writes(standin) >= moment, 60, 0.001, what="writes")
    assert proc.poll() is None, "the sync ended before the restart"
    mark = len(standin.requests)
    standin.restart(wait=False)
    code, out, err = finish(proc)
    assert code == 0, err[-3000:]
    assert standin.session != session  # it did restart
    after = standin.requests[mark:]
    assert any(r.path.startswith("/crumbIssuer") for r in after)  # a crumb of the new session
    assert not [r for r in after if r.method == "POST" and r.status == 403]
    assert_server_equals_yaml(standin, rendered, state)
    assert owned(standin, state) == yaml_names(rendered)


# --- two syncs at once ------------------------------------------------------------------------------------

TREE = """
- job:
    name: {folder}
    project-type: folder
- job-template:
    name: '{folder}/{{n}}-build'
    builders:
      - shell: 'make {{n}}'
- project:
    name: {folder}
    n: [{numbers}]
    jobs: ['{folder}/{{n}}-build']
"""


def tree(tmp_path, folder: str, jobs: int = 150) -> tuple[Path, set[tuple[str, str]]]:
    d = tmp_path / folder
    d.mkdir()
    (d / "jobs.yaml").write_text(TREE.format(folder=folder, numbers=", ".join(f"j{i:03d}" for i in range(jobs))))
    return d, {("job", folder)} | {("job", f"{folder}/j{i:03d}-build") for i in range(jobs)}


def waited(err: str) -> bool:
    return re.search(r"waiting for the sync started by pid \d+ at ", err) is not None


def run_two(standin, state: Path, first: Path, second: Path) -> list[tuple[int, str, str]]:
    """Two syncs that overlap for sure: the first is paused (SIGSTOP) while it holds the lock,
    until the second says it is waiting; then both run to their end."""
    a = sync(standin, state, str(first))
    wait_until(lambda: writes(standin) >= 1, 60, 0.002, what="the first sync's writes")
    a.send_signal(signal.SIGSTOP)
    b = sync(standin, state, str(second))
    said = []
    try:
        for line in b.stderr:
            said.append(line)
            if waited(line):
                break
    finally:
        a.send_signal(signal.SIGCONT)
    code_b, out_b, err_b = finish(b)
    return [finish(a), (code_b, out_b, "".join(said) + err_b)]


def test_two_syncs_of_different_trees_both_succeed_and_both_are_owned(standin, tmp_path):
    state = tmp_path / "state"
    (a, a_names), (b, b_names) = tree(tmp_path, "alpha"), tree(tmp_path, "beta")
    results = run_two(standin, state, a, b)
    assert [code for code, _, _ in results] == [0, 0], [err[-1000:] for _, _, err in results]
    assert waited(results[1][2]) and not waited(results[0][2])
    assert owned(standin, state) == a_names | b_names == server_names(standin)


def test_two_syncs_of_the_same_tree_both_succeed(standin, tmp_path):
    state = tmp_path / "state"
    a, names = tree(tmp_path, "alpha")
    results = run_two(standin, state, a, a)
    assert [code for code, _, _ in results] == [0, 0], [err[-1000:] for _, _, err in results]
    assert waited(results[1][2]) and not waited(results[0][2])
    assert "In sync: 151 items unchanged, nothing sent." in results[1][1]  # nothing left to do
    assert owned(standin, state) == names == server_names(standin)


def paused_writer(standin, state: Path, tree_dir: Path) -> subprocess.Popen:
    """A sync paused (SIGSTOP) in the middle of its writes, holding the lock."""
    writer = sync(standin, state, str(tree_dir))
    wait_until(lambda: writes(standin) >= 5, 60, 0.002, what="writes")
    writer.send_signal(signal.SIGSTOP)
    return writer


def test_plan_does_not_wait_for_a_running_sync(standin, tmp_path):
    state = tmp_path / "state"
    a, _ = tree(tmp_path, "alpha")
    writer = paused_writer(standin, state, a)
    try:
        code, out, err = finish(sync(standin, state, str(a), "--plan"))
    finally:
        writer.send_signal(signal.SIGCONT)
    assert code == 2 and not waited(err) and "to create" in out
    assert finish(writer)[0] == 0


def test_a_second_sync_gives_up_after_the_lock_timeout_naming_the_holder(standin, tmp_path):
    state = tmp_path / "state"
    a, _ = tree(tmp_path, "alpha")
    writer = paused_writer(standin, state, a)
    try:
        code, _, err = finish(sync(standin, state, str(a), "--lock-timeout", "0.2"))
    finally:
        writer.send_signal(signal.SIGCONT)
    assert code == 1
    assert f"another sync of {standin.url} is running (started by pid {writer.pid} at " in err
    assert err.strip().splitlines()[-1].startswith("dindjobs: error: ")
    assert finish(writer)[0] == 0


# --- signals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_new_writes_and_saves_the_ledger(standin, tmp_path, signum, code):
    state = tmp_path / "state"
    a, names = tree(tmp_path, "alpha", jobs=300)
    proc = sync(standin, state, str(a))
    wait_until(lambda: writes(standin) >= 20, 60, 0.002, what="writes")
    proc.send_signal(signum)
    got, out, err = finish(proc)
    assert got == code, err[-2000:]
    created = server_names(standin)
    assert 20 <= len(created) < len(names)
    assert owned(standin, state) == created  # saved: nothing created is left without an owner
    assert not list((state / "ledger").glob("*.journal"))  # folded
    summary = out.strip().splitlines()[-1]
    applied = int(re.search(r"Applied (\d+)", summary).group(1))
    not_applied = int(re.search(r"Interrupted: (\d+) not applied", summary).group(1))
    assert applied == len(created) and applied + not_applied == len(names)
    assert f"dindjobs: {signal.Signals(signum).name}: stopped" in err
    time.sleep(0.2)
    assert len(server_names(standin)) == len(created)  # nothing was sent after the exit


def test_a_url_where_nothing_listens_fails_at_once(tmp_path):
    class Nowhere:
        url = f"http://127.0.0.1:{free_port()}/"

    d, _ = tree(tmp_path, "alpha", jobs=1)
    code, _, err = finish(sync(Nowhere, tmp_path / "state", str(d)))
    assert code == 1
    assert err.strip().splitlines()[-1] == f"dindjobs: error: cannot reach Jenkins at {Nowhere.url} (connection refused)"


def test_a_signal_while_waiting_for_the_lock_applies_nothing(standin, tmp_path):
    state = tmp_path / "state"
    a, _ = tree(tmp_path, "alpha")
    writer = paused_writer(standin, state, a)
    try:
        waiter = sync(standin, state, str(a))
        for line in waiter.stderr:
            if waited(line):
                break
        waiter.send_signal(signal.SIGTERM)
        code, _, err = finish(waiter)
    finally:
        writer.send_signal(signal.SIGCONT)
    assert code == 143
    assert err.strip().splitlines()[-1] == ("dindjobs: error: SIGTERM: stopped while waiting for the sync lock; "
                                            "nothing applied")
    assert finish(writer)[0] == 0
