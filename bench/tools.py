"""The things a benchmark runs: a stand-in in its own process, and the two clients' CLIs.

Both clients authenticate the same way (the admin's API token, as people run JJB), each talks to
its own fresh stand-in for cold pushes, and each has its own isolated state: JJB its
``XDG_CACHE_HOME`` (the job cache is flushed for cold runs, kept for its no-op), dindjobs its
``DINDJOBS_STATE_DIR`` (the ownership ledger, keyed by URL and instance identity).
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.proc import Run, combine, measure

REPO = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("BENCH_BIN", REPO / ".venv" / "bin"))
ADMIN = "admin"
# The dindjobs sources the benchmarks run (``python -m dindjobs`` with this on PYTHONPATH). The
# driver points it at a snapshot of the last commit, so work in progress in the shared tree
# cannot change (or break) a run halfway; BENCH_SRC overrides it.
SRC = Path(os.environ.get("BENCH_SRC", REPO / "src"))


def dindjobs_argv(*args: str) -> list[str]:
    """The dindjobs CLI from :data:`SRC`."""
    return [str(BIN / "python"), "-m", "dindjobs", *args]


def dindjobs_env(**extra: str) -> dict:
    """The environment without the caller's DINDJOBS_* settings, with :data:`SRC` importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DINDJOBS_")}
    env["PYTHONPATH"] = str(SRC)
    env.update(extra)
    return env


def snapshot(dest: Path, ref: str = "HEAD") -> str:
    """Extract ``src/`` of ``ref`` into ``dest`` and use it as :data:`SRC`; returns the commit."""
    global SRC
    dest.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    SRC = dest / "src"
    return commit


class Credentials:
    """A users file for the stand-in and a token file for the clients (mode 0600, never argv)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.users_file = directory / "users"
        self.token_file = directory / "token"
        for path, text in ((self.users_file, f"{ADMIN}:{secrets.token_hex(16)}:{self.token}\n"),
                           (self.token_file, self.token + "\n")):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)


class StandinProc:
    """``bench.standin_host`` in a child process; see that module for the line protocol."""

    def __init__(self, home: Path, creds: Credentials, startup_delay: float = 0.0, wait: bool = True,
                 request_delay: float = 0.0) -> None:
        self.home = home
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(SRC)]))
        self._log = open(home.parent / f"{home.name}.log", "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.standin_host", "--home", str(home), "--users", str(creds.users_file),
             "--startup-delay", f"{startup_delay:.3f}", "--request-delay", f"{request_delay:.4f}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1, cwd=REPO, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.ready_at: float | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self._expect("LISTENING").split()[1])
        self.url = f"http://127.0.0.1:{self.port}/"
        if wait:
            self.wait_ready()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("READY "):
                self.ready_at = float(line.split()[1])
                self._ready.set()
            else:
                self.lines.put(line.rstrip("\n"))
        self.lines.put("EOF")

    def _expect(self, prefix: str, timeout: float = 60) -> str:
        line = self.lines.get(timeout=timeout)
        if not line.startswith(prefix):
            raise RuntimeError(f"stand-in said {line!r}, expected {prefix}; see {self.home}.log")
        return line

    def wait_ready(self, timeout: float = 120) -> float:
        """Block until the stand-in is ready; the epoch time it became so."""
        if not self._ready.wait(timeout):
            raise RuntimeError(f"stand-in not ready after {timeout} s; see {self.home}.log")
        return self.ready_at

    def _ask(self, command: str, prefix: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._expect(prefix)

    def counts(self) -> dict:
        """Requests answered since the last :meth:`reset`: ``total``, ``reads``, ``writes``."""
        return json.loads(self._ask("counts", "{"))

    def reset(self) -> None:
        self._ask("reset", "OK")

    def restart(self, delay: float, down: float) -> None:
        """Start a restart (DELAY s of 503 "restarting", DOWN s with the port closed, a boot)."""
        self._ask(f"restart {delay} {down}", "OK")

    def restarted(self) -> float:
        """Wait for the restart to end; its duration in seconds."""
        return float(self._ask("restarted", "RESTARTED").split()[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> StandinProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Client:
    """One tool's CLI, its isolated state directory, and how to run it against a stand-in."""

    name = ""

    def __init__(self, workdir: Path, creds: Credentials, workers: int) -> None:
        self.workdir = workdir
        self.creds = creds
        self.workers = workers
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def label(self) -> str:
        return f"{self.name} w{self.workers}"

    def cold(self) -> None:
        """Forget any client-side state (before a push to a fresh stand-in)."""

    def push(self, standin: StandinProc, yaml_dir: Path, timeout: float = 900) -> Run:
        raise NotImplementedError


class Dindjobs(Client):
    name = "dindjobs"

    def cold(self) -> None:
        shutil.rmtree(self.workdir / "state", ignore_errors=True)
        shutil.rmtree(self.workdir / "xdg-cache", ignore_errors=True)  # the render cache too

    def env(self) -> dict:
        return dindjobs_env(DINDJOBS_TOKEN_FILE=str(self.creds.token_file),
                            DINDJOBS_STATE_DIR=str(self.workdir / "state"), XDG_CACHE_HOME=str(self.workdir / "xdg-cache"))

    def argv(self, standin: StandinProc, *args: str) -> list[str]:
        return dindjobs_argv("--url", standin.url, "--user", ADMIN, *args)

    def push(self, standin: StandinProc, yaml_dir: Path, timeout: float = 900) -> Run:
        argv = self.argv(standin, "sync", "--yes", "--timings", "--workers", str(self.workers), str(yaml_dir))
        return measure(argv, env=self.env(), timeout=timeout, log_dir=self.workdir).check()


def timings(run: Run) -> dict | None:
    """Where a ``dindjobs sync --timings`` run spent its time (seconds): ``render``, ``reads``,
    ``compare``, ``plan``, ``apply``, ``total`` (in the process), plus ``startup``: the wall time
    outside it (interpreter, imports, settings, exit). None when the run printed none."""
    line = next((t for t in run.stderr.splitlines() if t.startswith("dindjobs timings: ")), None)
    if line is None:
        return None
    data = json.loads(line.partition(": ")[2])
    data["startup"] = max(0.0, run.seconds - data.get("total", 0.0))
    return data


class JJB(Client):
    name = "jenkins-jobs"

    @property
    def cache(self) -> Path:
        return self.workdir / "xdg-cache"

    def cold(self) -> None:
        shutil.rmtree(self.cache / "jenkins_jobs", ignore_errors=True)

    def conf(self, standin: StandinProc) -> Path:
        # JJB reads its credentials from its ini file only; the file is private to this run.
        path = self.workdir / f"jjb-{standin.port}.ini"
        text = (f"[job_builder]\nquery_plugins_info=False\n\n[jenkins]\nurl={standin.url}\nuser={ADMIN}\n"
                f"password={self.creds.token}\nquery_plugins_info=False\n")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return path

    def push(self, standin: StandinProc, yaml_dir: Path, timeout: float = 900) -> Run:
        """``jenkins-jobs update``; on a server without the folders and with several workers, the
        folders are pushed first in a run of their own (see :meth:`needs_folders_first`)."""
        conf = str(self.conf(standin))
        env = dict(os.environ, XDG_CACHE_HOME=str(self.cache))
        runs = []
        if self.needs_folders_first(yaml_dir):
            # JJB's parallel update does not order folders before their jobs: with --workers 4 a
            # job often reaches Jenkins before its folder exists and the run fails ("folder for
            # the job does not exist"). What JJB users do is push the folders first, so we do too
            # and count both runs. The same defaults file keeps the folders' XML (and so JJB's
            # cache entries) identical to the full run's, which then skips them.
            folders = os.pathsep.join(str(yaml_dir / f) for f in ("defaults.yaml", "folders.yaml"))
            runs.append(self._update(conf, folders, env, timeout))
        runs.append(self._update(conf, str(yaml_dir), env, timeout))
        return combine(runs) if len(runs) > 1 else runs[0]

    def needs_folders_first(self, yaml_dir: Path) -> bool:
        cached = (self.cache / "jenkins_jobs").exists()
        return self.workers > 1 and not cached and (yaml_dir / "folders.yaml").exists()

    def _update(self, conf: str, paths: str, env: dict, timeout: float) -> Run:
        argv = [str(BIN / "jenkins-jobs"), "--conf", conf, "update", "--workers", str(self.workers), paths]
        return measure(argv, env=env, timeout=timeout, log_dir=self.workdir).check()
