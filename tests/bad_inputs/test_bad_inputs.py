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

Adding a case is adding a folder. Every case runs as a real ``dindjobs`` process against a
stand-in (one stand-in per worker, cases in parallel) and must exit 1 without a traceback,
with at most 8 non-blank lines on stderr ending with the error, naming ``where``, printing no
secret, and with zero write requests on the stand-in.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dindjobs.standin import StandIn
from support.net import free_port
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, admin_user

CASES_DIR = Path(__file__).parent
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "expect.toml").is_file())
WORKERS = 12
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


def _run(work: Path, expect: dict, url: str, state: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DINDJOBS_", "JJB_"))}
    env.update({"DINDJOBS_URL": url, "DINDJOBS_USER": ADMIN_USER, "DINDJOBS_TOKEN": ADMIN_TOKEN,
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


class _Pool:
    """One stand-in per worker thread, so each case's write requests are its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.local = threading.local()
        self.made: list[StandIn] = []
        self.lock = threading.Lock()

    def standin(self) -> StandIn:
        instance = getattr(self.local, "standin", None)
        if instance is None:
            with self.lock:
                home = self.root / f"standin-{len(self.made)}"
                instance = StandIn(home, users=[admin_user()], quiet_period=0.05)
                self.made.append(instance)
            instance.start()
            self.local.standin = instance
        return instance

    def run_case(self, case: str) -> Outcome:
        expect = _expect(case)
        outcome = Outcome(expect)
        standin = self.standin()
        work = _prepare(case, self.root / "live")
        before = len(standin.requests)
        code, out, err = _run(work, expect, standin.url, self.root / "state" / case)
        writes = [r for r in standin.requests[before:] if r.method not in ("GET", "HEAD")]
        outcome.live = Run(code, out, err, writes)
        if expect.get("stage", "render") != "server":
            work = _prepare(case, self.root / "unreachable")
            code, out, err = _run(work, expect, f"http://127.0.0.1:{free_port()}/",
                                  self.root / "state-unreachable" / case)
            outcome.unreachable = Run(code, out, err)
        return outcome

    def stop(self) -> None:
        for instance in self.made:
            instance.stop()


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """Runs every selected case once, in parallel; returns {case: Outcome}."""
    selected = sorted({item.callspec.params["case"] for item in request.session.items
                       if getattr(item, "originalname", "") == "test_bad_input"})
    pool = _Pool(tmp_path_factory.mktemp("bad-inputs"))
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as executor:
            results = dict(zip(selected, executor.map(pool.run_case, selected), strict=True))
    finally:
        pool.stop()
    sys.stderr.write(f"\nbad inputs: {len(selected)} cases in {time.monotonic() - started:.1f} s\n")
    return results


def _secrets(expect: dict) -> list[str]:
    return [ADMIN_PASSWORD, ADMIN_TOKEN, *expect.get("secrets", [])]


def _check(run: Run, expect: dict, label: str) -> None:
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
    for secret in _secrets(expect):
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
    _check(outcome.live, outcome.expect, "against the stand-in")
    assert outcome.live.writes == [], f"write requests: {outcome.live.writes}"
    if outcome.unreachable is not None:
        _check(outcome.unreachable, outcome.expect, "with Jenkins unreachable")
