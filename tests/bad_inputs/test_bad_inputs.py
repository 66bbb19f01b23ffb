"""Every bad input gets a short, exact error before anything is written (issue 14).

Each folder ``tests/bad_inputs/<NNN-what>/`` is one case: the job tree (``jobs/`` unless
``args`` says otherwise), any ini or secret files it needs, and ``expect.toml``:

    words = ["mapping values"]   # words stderr must contain
    where = "jobs/a.yaml:4"      # the file:line (optionally :col) the error must name
    stage = "render"             # render (default), settings or server: render and settings
                                 # errors must show even when Jenkins is unreachable
    args = ["sync", "jobs"]      # the dindjobs arguments (default: sync jobs)
    secrets = ["hunter2"]        # extra values that must never be printed
    [env]                        # environment on top of a working URL, user and token
    DINDJOBS_PASSWORD = "e"
    [make]                       # files generated at run time (too big to keep in git)
    "jobs/big.yaml" = { line = "# padding\\n", times = 1000 }

Adding a case is adding a folder. Every case runs as a real ``dindjobs`` process against one
shared stand-in (cases in parallel, each as its own user with its own API token, so the
stand-in's request log tells each case's requests apart) and must exit 1 without a traceback,
with at most 8 non-blank lines on stderr ending with the error, naming ``where``, printing no
secret, and with zero write requests on the stand-in (none at all, whoever sent them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dindjobs.config import Secret
from dindjobs.standin import StandIn, User
from support.net import free_port
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, admin_user

CASES_DIR = Path(__file__).parent
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "expect.toml").is_file())
WORKERS = 8
CASE_TIMEOUT = 60  # seconds; a case that needs more is a hang (the alias bombs did)
MAX_STDERR_LINES = 8
CLASSES = ("yaml", "jjb", "name", "include", "conf", "cred")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    writes: list = field(default_factory=list)


@dataclass
class Outcome:
    expect: dict
    live: Run | None = None  # against the stand-in
    unreachable: Run | None = None  # against a port nobody listens on


def _expect(case: str) -> dict:
    return tomllib.loads((CASES_DIR / case / "expect.toml").read_text(encoding="utf-8"))


def _prepare(case: str, root: Path) -> Path:
    work = root / case
    shutil.copytree(CASES_DIR / case, work, symlinks=True)
    for rel, spec in _expect(case).get("make", {}).items():
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(spec.get("head", "") + spec["line"] * spec["times"], encoding="utf-8")
    return work


def _user(case: str) -> str:
    return "case-" + case.split("-")[0]


def _token(case: str) -> str:
    return f"{int(case.split('-')[0]):04d}" + "7e57" * 7


def _run(case: str, work: Path, expect: dict, url: str, state: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINDJOBS_", "JJB_"))}
    env.update({"DINDJOBS_URL": url, "DINDJOBS_USER": _user(case), "DINDJOBS_TOKEN": _token(case),
                "DINDJOBS_STATE_DIR": str(state), "HOME": str(state), "XDG_CACHE_HOME": str(state / "cache"),
                "COLUMNS": "200"})
    for key, value in expect.get("env", {}).items():
        if value == "":
            env.pop(key, None)
        else:
            env[key] = value.replace("{case}", str(work))
    try:
        proc = subprocess.run([sys.executable, "-m", "dindjobs", *expect.get("args", ["sync", "jobs"])],
                              cwd=work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return -1, "", f"(no answer within {CASE_TIMEOUT} s)"
    return proc.returncode, proc.stdout, proc.stderr


def _run_case(standin: StandIn, root: Path, case: str) -> Outcome:
    expect = _expect(case)
    outcome = Outcome(expect)
    work = _prepare(case, root / "live")
    code, out, err = _run(case, work, expect, standin.url, root / "state" / case)
    writes = [r for r in list(standin.requests) if r.user == _user(case) and r.method not in ("GET", "HEAD")]
    outcome.live = Run(code, out, err, writes)
    if expect.get("stage", "render") != "server":
        work = _prepare(case, root / "unreachable")
        code, out, err = _run(case, work, expect, f"http://127.0.0.1:{free_port()}/", root / "state-off" / case)
        outcome.unreachable = Run(code, out, err)
    return outcome


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """One stand-in for every case: the admin, plus a user with an API token per case."""
    users = [admin_user()]
    for case in CASES:
        user = User(_user(case), Secret(f"pw-{case}", "bad-inputs"))
        user.add_token(_token(case), "bad-inputs")
        users.append(user)
    instance = StandIn(tmp_path_factory.mktemp("bad-inputs-standin"), users=users, quiet_period=0.05)
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def outcomes(request, standin, tmp_path_factory):
    """Runs every selected case once, in parallel; returns {case: Outcome}."""
    selected = sorted({item.callspec.params["case"] for item in request.session.items
                       if getattr(item, "originalname", "") == "test_bad_input"})
    root = tmp_path_factory.mktemp("bad-inputs")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=WORKERS) as executor:
        results = dict(zip(selected, executor.map(lambda case: _run_case(standin, root, case), selected),
                           strict=True))
    sys.stderr.write(f"\nbad inputs: {len(selected)} cases in {time.monotonic() - started:.1f} s\n")
    return results


def _secrets(case: str, expect: dict) -> list[str]:
    return [ADMIN_PASSWORD, ADMIN_TOKEN, _token(case), *expect.get("secrets", [])]


def _check(run: Run, case: str, expect: dict, label: str) -> None:
    text = run.stdout + run.stderr
    assert run.code == expect.get("exit", 1), f"{label}: exit {run.code}\n{run.stderr}"
    assert "Traceback" not in text and "internal error" not in text, f"{label}: crashed\n{run.stderr}"
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert 0 < len(lines) <= MAX_STDERR_LINES, f"{label}: {len(lines)} lines on stderr\n{run.stderr}"
    last = lines[-1]
    assert last.startswith("dindjobs: error: "), f"{label}: the error is not the last line\n{run.stderr}"
    headline = last.removeprefix("dindjobs: error: ")
    assert not any(headline in line for line in lines[:-1]), f"{label}: the error is printed twice\n{run.stderr}"
    where = expect.get("where")
    if where:
        assert re.search(re.escape(where) + r"(:\d+)?:", last), f"{label}: {where} not named\n{run.stderr}"
    for word in expect.get("words", []):
        assert word in run.stderr, f"{label}: {word!r} missing\n{run.stderr}"
    for secret in _secrets(case, expect):
        assert not re.search(rf"(?<!\w){re.escape(secret)}(?!\w)", text), f"{label}: a secret was printed"
    assert not re.search(r"\w\*\*\*|\*\*\*\w", text), f"{label}: a word was mangled by masking\n{run.stderr}"


def test_suite_is_large_enough_and_covers_every_class():
    assert len(CASES) >= 100
    for kind in CLASSES:
        assert sum(1 for case in CASES if case.split("-")[1] == kind) >= 3, kind
    for case in CASES:
        assert re.fullmatch(r"\d{3}-[a-z]+-[a-z0-9-]+", case), case
        assert case.split("-")[1] in CLASSES, case


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case, outcomes):
    outcome = outcomes[case]
    _check(outcome.live, case, outcome.expect, "against the stand-in")
    assert outcome.live.writes == [], f"write requests: {outcome.live.writes}"
    if outcome.unreachable is not None:
        _check(outcome.unreachable, case, outcome.expect, "with Jenkins unreachable")


def test_no_case_wrote_anything_whoever_it_authenticated_as(outcomes, standin):
    if not outcomes:
        pytest.skip("no case selected")
    assert standin.writes() == []
