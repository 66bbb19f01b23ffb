"""Scenarios 6 and 7: builds in the wrapper's nested daemon against the host daemon, and how
fast a wrapper (re)starts. Needs the Docker engine and ``dindjobs-wrapper:latest``.

Everything is driven through the tools a user has: ``dindjobs up/down`` for the wrapper (unique
name, its own state directory, volumes removed at the end) and the ``docker`` CLI for builds,
``docker start`` and ``docker kill``. Both daemons build with the classic builder
(``DOCKER_BUILDKIT=0``: the nested CLI has no buildx) and host networking, from the same base
image (``docker save`` on the host, ``docker load`` in the nested daemon; nothing is pulled).

``python -m bench.nested`` runs the experiments of issue 16 on where the nested build's extra time
goes (variants of the wrapper in rotating rounds, a run/commit split); see bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench import stats
from bench.proc import cpu_seconds
from bench.tools import dindjobs_argv, dindjobs_env

BASE_IMAGE = "dindjobs-offline-base:trixie"
WRAPPER_IMAGE = "dindjobs-wrapper:latest"

# The RUN steps of the benchmark build, each also run on its own by the run/commit split.
STEPS = (
    # A few thousand small files, written then archived: many small layer writes.
    "mkdir -p /data && cd /data && i=0 && while [ $i -lt {files} ]; do "
    'echo "file $i of the nested-build benchmark" > "f$i.txt"; i=$((i + 1)); done',
    "tar -czf /data.tgz -C /data . && ls -l /data.tgz",
    # And a copy of /usr: large sequential copies through the storage driver.
    "cp -a /usr /usr-copy && du -sh /usr-copy",
)


def dockerfile(base: str, files: int) -> str:
    """The benchmark's Dockerfile: :data:`STEPS` as RUN steps on ``base``."""
    runs = "".join(f"RUN {step.format(files=files)}\n" for step in STEPS)
    return f"FROM {base}\nUSER root\n{runs}"


def docker(*args: str, check: bool = True, input_bytes: bytes | None = None, timeout: float = 600,
           env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], check=check, capture_output=True, input=input_bytes,
                          timeout=timeout, env=env)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchWrapper:
    """A wrapper started with ``dindjobs up`` under a unique name, removed with ``down --volumes``."""

    def __init__(self, work: Path, log: Callable[[str], None], image: str = WRAPPER_IMAGE,
                 dockerd_args: tuple[str, ...] = ()) -> None:
        self.name = f"djbench-{secrets.token_hex(4)}"
        self.image = image
        self.dockerd_args = dockerd_args
        self.state = work / "wrapper-state"
        self.port = _free_port()
        self.log = log
        self.env = dindjobs_env(DINDJOBS_STATE_DIR=str(self.state))
        self.container = self.name
        self.url = f"http://127.0.0.1:{self.port}/"

    def dindjobs(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(dindjobs_argv("--name", self.name, *args), capture_output=True, text=True,
                              env=self.env, timeout=timeout)

    def up(self) -> None:
        extra = ["--image", self.image]
        if self.dockerd_args:
            extra.append("--dockerd-args=" + " ".join(self.dockerd_args))
        done = self.dindjobs("up", "--port", str(self.port), *extra, "--json", "--wait", "180")
        if done.returncode != 0:
            raise RuntimeError(f"dindjobs up failed: {done.stderr.strip().splitlines()[-1:]}")
        info = json.loads(done.stdout)
        self.container = info.get("name") or self.name
        self.url = info.get("url") or self.url

    def down(self) -> None:
        done = self.dindjobs("down", "--volumes", "--yes")
        if done.returncode != 0:
            self.log(f"  warning: dindjobs down failed: {done.stderr.strip()}")
        shutil.rmtree(self.state, ignore_errors=True)

    def exec(self, *args: str, check: bool = True, input_bytes: bytes | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
        prefix = ["exec", "-i"] if input_bytes is not None else ["exec"]
        return docker(*prefix, "-e", "DOCKER_BUILDKIT=0", self.container, *args, check=check,
                      input_bytes=input_bytes, timeout=timeout)

    def nested_ready(self) -> bool:
        return self.exec("docker", "version", "--format", "{{.Server.Version}}", check=False, timeout=30).returncode == 0

    def jenkins_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "login", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False


def storage_drivers(wrapper: BenchWrapper) -> dict:
    host = docker("info", "--format", "{{.Driver}}").stdout.decode().strip()
    nested = wrapper.exec("docker", "info", "--format", "{{.Driver}}").stdout.decode().strip()
    return {"host": host, "nested": nested}


def _timed_build(argv_prefix: list[str], context: str, tag: str, env: dict | None) -> float:
    start = time.monotonic()
    done = subprocess.run([*argv_prefix, "build", "--no-cache", "--network", "host", "-q", "-t", tag, context],
                          capture_output=True, env=env, timeout=900)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"build failed: {done.stderr.decode(errors='replace')[-800:]}")
    return seconds


# A job runs `docker build` inside the wrapper; `docker exec` is only how the benchmark gets
# there, so the nested build is timed by a clock inside the wrapper, around the same command.
_TIMED_INSIDE = 'start=$(date +%s%N); docker build --no-cache --network host -q -t "$1" "$2" >/dev/null || exit 1; \
echo $(( $(date +%s%N) - start ))'


def _timed_nested_build(wrapper: BenchWrapper, context: str, tag: str) -> float:
    done = docker("exec", "-e", "DOCKER_BUILDKIT=0", wrapper.container, "bash", "-c", _TIMED_INSIDE, "timed",
                  tag, context, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"build failed: {done.stderr.decode(errors='replace')[-800:]}")
    return int(done.stdout.decode().split()[-1]) / 1e9


def prepare_build(work: Path, wrapper: BenchWrapper, files: int, log: Callable[[str], None]) -> Path:
    """The build context on the host and in the wrapper, and the base image in the nested daemon."""
    context = work / "build-context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile(BASE_IMAGE, files), encoding="utf-8")
    log(f"  loading {BASE_IMAGE} into the nested daemon")
    saved = docker("save", BASE_IMAGE).stdout
    wrapper.exec("docker", "load", input_bytes=saved)
    docker("cp", str(context), f"{wrapper.container}:/tmp/bench-context")
    return context


def prune_nested(wrapper: BenchWrapper) -> None:
    """What ``--prune`` does between nested builds: dangling images, stopped containers, build cache."""
    wrapper.exec("docker", "system", "prune", "-f", check=False)


def build_overhead(work: Path, wrapper: BenchWrapper, runs: int, warmup: int, files: int,
                   log: Callable[[str], None], prune: bool = False) -> dict:
    """The same Dockerfile built ``--no-cache`` on the host and in the nested daemon, alternating,
    with the CPU time each building daemon (dockerd + containerd) spent on it."""
    context = prepare_build(work, wrapper, files, log)
    tag = f"{wrapper.name}-build:bench"
    out: dict = {"files": files, **{f"{side}{key}": [] for side in ("host", "nested") for key in ("", "_cpu")}}
    try:
        for i in range(warmup + runs):
            for side in ("host", "nested") if i % 2 == 0 else ("nested", "host"):
                done = _build_once(side, wrapper if side == "nested" else None, context, tag, prune)
                _log_build(log, f"build {i + 1}/{warmup + runs} {side:6}", done, i < warmup)
                if i >= warmup:
                    out[side].append(done["s"])
                    out[f"{side}_cpu"].append(done["cpu"])
    finally:
        docker("rmi", "-f", tag, check=False)
    return out


def _run_and_commit(docker_argv: list[str], image: str, step: str, name: str) -> tuple[float, float, str]:
    """One build step by hand: ``docker run`` it, then ``docker commit``; (run s, commit s, new image)."""
    def call(*args: str) -> str:
        done = subprocess.run([*docker_argv, *args], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"docker {args[0]} failed: {done.stderr.strip()[-400:]}")
        return done.stdout.strip()
    t0 = time.monotonic()
    call("run", "--name", name, "--network", "host", "-u", "root", image, "sh", "-c", step)
    t1 = time.monotonic()
    committed = call("commit", name)
    t2 = time.monotonic()
    call("rm", name)
    return t1 - t0, t2 - t1, committed


def run_commit_split(work: Path, wrapper: BenchWrapper, runs: int, files: int,
                     log: Callable[[str], None]) -> dict:
    """Each RUN step as ``docker run`` plus ``docker commit``, host and nested alternating: is the
    nested penalty in running the steps or in committing their layers?"""
    prepare_build(work, wrapper, files, log)
    sides = {"host": ["docker"], "nested": ["docker", "exec", wrapper.container, "docker"]}
    out: dict = {side: {"run": [], "commit": []} for side in sides}
    for i in range(runs):
        for side in (("host", "nested") if i % 2 == 0 else ("nested", "host")):
            image, images, run_s, commit_s = BASE_IMAGE, [], 0.0, 0.0
            for n, step in enumerate(STEPS):
                r, c, image = _run_and_commit(sides[side], image, step.format(files=files), f"{wrapper.name}-s{n}")
                images.append(image)
                run_s, commit_s = run_s + r, commit_s + c
            subprocess.run([*sides[side], "rmi", *reversed(images)], capture_output=True, timeout=300)
            out[side]["run"].append(run_s)
            out[side]["commit"].append(commit_s)
            log(f"  split {i + 1}/{runs} {side:6} run {run_s:6.2f} s, commit {commit_s:6.2f} s")
    return out


def _poll(check: Callable[[], bool], start: float, deadline: float, out: dict, key: str) -> None:
    while time.monotonic() < deadline:
        if check():
            out[key] = time.monotonic() - start
            return
        time.sleep(0.05)


def start_times(wrapper: BenchWrapper, runs: int, warmup: int, log: Callable[[str], None]) -> dict:
    """``docker start`` to nested-daemon-ready and to Jenkins-ready, after ``docker stop`` and
    after ``docker kill`` (alternating), measured from just before ``docker start``."""
    results = {"stop": {"daemon": [], "jenkins": []}, "kill": {"daemon": [], "jenkins": []}}
    for i in range(warmup + runs):
        for how in ("stop", "kill"):
            docker(how, wrapper.container, timeout=120)
            docker("wait", wrapper.container, check=False, timeout=120)
            times: dict = {}
            start = time.monotonic()
            docker("start", wrapper.container, timeout=120)
            deadline = start + 180
            pollers = [threading.Thread(target=_poll, args=(wrapper.nested_ready, start, deadline, times, "daemon")),
                       threading.Thread(target=_poll, args=(wrapper.jenkins_ready, start, deadline, times, "jenkins"))]
            for t in pollers:
                t.start()
            for t in pollers:
                t.join()
            if "daemon" not in times or "jenkins" not in times:
                raise RuntimeError(f"wrapper not ready 180 s after docker start (after docker {how}): {times}")
            log(f"  start {i + 1}/{warmup + runs} after {how:4}: daemon {times['daemon']:.2f} s, "
                f"Jenkins {times['jenkins']:.2f} s{' (warm-up)' if i < warmup else ''}")
            if i >= warmup:
                results[how]["daemon"].append(times["daemon"])
                results[how]["jenkins"].append(times["jenkins"])
    return results


def build_rows(data: dict, drivers: dict) -> list[dict]:
    scen = f"6 nested build ({data['files']} files, /usr copy)"
    note = (f"{len(data['nested'])} alternating pairs; storage driver: nested {drivers['nested']}, "
            f"host {drivers['host']}")
    rows = [stats.row(scen, "build --no-cache", stats.summary(data["nested"], "s"), stats.summary(data["host"], "s"),
                      stats.ratio_summary(data["nested"], data["host"]), "<= 1.10x", note=note)]
    if data.get("host_cpu") and min(data["host_cpu"]) > 0:
        rows.append(stats.row(scen, "daemon CPU (dockerd+containerd)", stats.summary(data["nested_cpu"], "s"),
                              stats.summary(data["host_cpu"], "s"),
                              stats.ratio_summary(data["nested_cpu"], data["host_cpu"])))
    return rows


def start_rows(data: dict) -> list[dict]:
    rows = []
    for how in ("stop", "kill"):
        scen = f"7 docker start after docker {how}"
        rows += [stats.row(scen, "to nested daemon ready", stats.summary(data[how]["daemon"], "s")),
                 stats.row(scen, "to Jenkins ready", stats.summary(data[how]["jenkins"], "s"))]
    return rows


def available() -> str | None:
    """Why the Docker scenarios cannot run here, or None."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if docker("info", check=False, timeout=30).returncode != 0:
        return "no Docker engine answers"
    for image in (WRAPPER_IMAGE, BASE_IMAGE):
        if docker("image", "inspect", image, check=False, timeout=30).returncode != 0:
            return f"image {image} missing (make image OFFLINE=1)"
    return None


HOST_DOCKER_IMAGE = "dindjobs-wrapper:host-docker"
# The host's daemon binaries (Debian 12's docker.io, containerd, runc) and the libraries of theirs
# that Debian 13 lacks.
HOST_DOCKER_BINARIES = ("/usr/sbin/dockerd", "/usr/sbin/docker-proxy", "/usr/bin/docker-init", "/usr/bin/containerd",
                        "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc")
HOST_DOCKER_LIBRARIES = ("libdevmapper.so.1.02.1", "libgcrypt.so.20", "libgpg-error.so.0")


def build_host_docker_image(work: Path) -> None:
    """:data:`HOST_DOCKER_IMAGE`: the wrapper with this machine's dockerd, containerd and runc in
    /usr/local/bin (first on PATH), to compare Docker versions with everything else equal."""
    context = work / "host-docker"
    (context / "bin").mkdir(parents=True, exist_ok=True)
    (context / "lib").mkdir(exist_ok=True)
    for binary in HOST_DOCKER_BINARIES:
        shutil.copy2(binary, context / "bin")
    for library in HOST_DOCKER_LIBRARIES:
        shutil.copy(Path("/lib/x86_64-linux-gnu") / library, context / "lib")
    (context / "Dockerfile").write_text(f"FROM {WRAPPER_IMAGE}\nCOPY bin/ /usr/local/bin/\n"
                                        "COPY lib/ /usr/lib/x86_64-linux-gnu/\n", encoding="utf-8")
    docker("build", "-q", "-t", HOST_DOCKER_IMAGE, str(context), env=dict(os.environ, DOCKER_BUILDKIT="0"))


@dataclasses.dataclass(frozen=True)
class Variant:
    """One set-up of the nested daemon, compared against the host in alternating pairs."""

    name: str
    what: str
    image: str = WRAPPER_IMAGE
    dockerd_args: tuple[str, ...] = ()
    prune: bool = False
    cpu_shares: int = 0  # `docker update --cpu-shares` once up (0: the engine's default, 1024)
    daemon_at_root: bool = False  # move the nested dockerd/containerd to the root cpu cgroup (v1)


VARIANTS = {v.name: v for v in (
    Variant("default", "the wrapper as `dindjobs up` starts it"),
    Variant("prune", "`docker system prune -f` after each nested build", prune=True),
    Variant("docker20", "the nested daemon is Debian 12's Docker 20.10, as on the host",
            image=HOST_DOCKER_IMAGE),
    Variant("cpu-shares", "the wrapper's cgroup weighs 8x a container's (`docker update --cpu-shares 8192`)",
            cpu_shares=8192),
    Variant("daemon-at-root", "the nested dockerd and containerd moved to the root cpu,cpuacct cgroup, "
            "where the host's daemon runs; the steps stay in the wrapper's cgroup", daemon_at_root=True),
    Variant("seccomp-unconfined", "nested containers without the default seccomp profile",
            dockerd_args=("--seccomp-profile=unconfined",)),
)}


def host_daemon_pids() -> list[int]:
    """The host's dockerd serving DOCKER_HOST and its containerd, when they run on this machine."""
    sock = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"dockerd") or not _in_our_pid_namespace(proc):
            continue  # the wrappers' nested daemons are in this /proc too
        # A dockerd started without -H/--host listens on the default socket.
        default = sock == "/var/run/docker.sock" and not any(a.startswith((b"-H", b"--host")) for a in argv)
        if default or any(sock.encode() in a for a in argv):
            children = subprocess.run(["pgrep", "-P", proc.name, "containerd"], capture_output=True, text=True)
            return [int(proc.name), *map(int, children.stdout.split())]
    return []


def _in_our_pid_namespace(proc: Path) -> bool:
    try:
        return os.readlink(proc / "ns" / "pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def nested_daemon_pids(wrapper: BenchWrapper) -> list[int]:
    """Host PIDs of the wrapper's dockerd and containerd (``docker top``)."""
    top = docker("top", wrapper.container, "-eo", "pid,comm", check=False).stdout.decode().split("\n")[1:]
    return [int(line.split()[0]) for line in top if line.split()[1:] in (["dockerd"], ["containerd"])]


def move_to_root_cpu_cgroup(pids: list[int], root: Path = Path("/sys/fs/cgroup")) -> None:
    """Move ``pids`` (all their threads) into the root cgroup of the v1 cpu and cpuacct hierarchies."""
    for controller in ("cpu", "cpuacct"):
        procs = root / controller / "cgroup.procs"
        if not procs.exists():
            raise RuntimeError(f"no cgroup v1 {controller} hierarchy at {procs.parent}")
        for pid in pids:
            procs.write_text(f"{pid}\n")


def _build_once(side: str, wrapper: BenchWrapper | None, context: Path, tag: str, prune: bool) -> dict:
    """One ``--no-cache`` build: wall seconds and the CPU time of the daemon that built it."""
    pids = host_daemon_pids() if wrapper is None else nested_daemon_pids(wrapper)
    cpu = cpu_seconds(pids)
    if wrapper is None:
        seconds = _timed_build(["docker"], str(context), tag, dict(os.environ, DOCKER_BUILDKIT="0"))
    else:
        seconds = _timed_nested_build(wrapper, "/tmp/bench-context", tag)
    done = {"s": seconds, "cpu": cpu_seconds(pids) - cpu, "load": os.getloadavg()[0]}
    if wrapper is None:
        docker("rmi", "-f", tag, check=False)
    else:
        wrapper.exec("docker", "rmi", "-f", tag, check=False)
        if prune:
            prune_nested(wrapper)
    return done


def _log_build(log: Callable[[str], None], label: str, done: dict, warm: bool) -> None:
    log(f"  {label} {done['s']:6.2f} s, daemon CPU {done['cpu']:5.2f} s, load {done['load']:4.1f}"
        f"{' (warm-up)' if warm else ''}")


def compare_variants(work: Path, variants: list[Variant], rounds: int, warmup: int, files: int,
                     log: Callable[[str], None]) -> dict[str, dict]:
    """One wrapper per variant, all up at once; each round builds on the host and in every variant,
    the order rotating from round to round, so that every variant meets the same load as the host
    build it is paired with."""
    wrappers = {v.name: BenchWrapper(work / v.name, log, image=v.image, dockerd_args=v.dockerd_args) for v in variants}
    keys = [f"{side}{key}" for side in ("host", "nested") for key in ("", "_cpu")]
    out: dict[str, dict] = {v.name: {**{k: [] for k in keys}, "load": [], "what": v.what} for v in variants}
    tag = f"djbench-{secrets.token_hex(4)}:bench"
    try:
        if any(v.image == HOST_DOCKER_IMAGE for v in variants):
            build_host_docker_image(work)
        for v in variants:
            log(f"variant {v.name}: {v.what}")
            wrappers[v.name].up()
            if v.cpu_shares:
                docker("update", "--cpu-shares", str(v.cpu_shares), wrappers[v.name].container)
            if v.daemon_at_root:
                move_to_root_cpu_cgroup(nested_daemon_pids(wrappers[v.name]))
            context = prepare_build(work / v.name, wrappers[v.name], files, log)
            out[v.name]["nested_version"] = wrappers[v.name].exec(
                "docker", "version", "--format", "{{.Server.Version}}").stdout.decode().strip()
        sides = ["host", *wrappers]
        prune = {v.name: v.prune for v in variants}
        for i in range(warmup + rounds):
            order = sides[i % len(sides):] + sides[:i % len(sides)]
            done = {}
            for side in order:
                done[side] = _build_once(side, wrappers.get(side), context, tag, prune.get(side, False))
                _log_build(log, f"round {i + 1}/{warmup + rounds} {side:20}", done[side], i < warmup)
            if i >= warmup:
                for name in wrappers:
                    for key, value in (("", "s"), ("_cpu", "cpu")):
                        out[name][f"host{key}"].append(done["host"][value])
                        out[name][f"nested{key}"].append(done[name][value])
                    out[name]["load"].append(done[name]["load"])
    finally:
        for wrapper in wrappers.values():
            wrapper.down()
    for data in out.values():
        if data["nested"]:
            data["ratio"] = stats.ratio_summary(data["nested"], data["host"])
    return out


def experiment_table(results: dict[str, dict]) -> str:
    """The variants as a Markdown table: ratio median (min-max) over the pairs."""
    lines = ["| variant | nested dockerd | pairs | nested s | host s | nested/host (min-max) | best/best "
             "| daemon CPU nested/host |", "|---|---|---|---|---|---|---|---|"]
    for name, data in results.items():
        r = data["ratio"]
        lines.append(f"| {name} | {data['nested_version']} | {r['n']} | "
                     f"{stats.fmt_metric(stats.summary(data['nested'], 's'))} | "
                     f"{stats.fmt_metric(stats.summary(data['host'], 's'))} | "
                     f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}) | "
                     f"{min(data['nested']) / min(data['host']):.2f} | "
                     f"{statistics.median(data['nested_cpu']) / max(statistics.median(data['host_cpu']), 0.01):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.nested``: the nested-build experiments, one variant at a time."""
    parser = argparse.ArgumentParser(prog="python -m bench.nested", description=main.__doc__)
    parser.add_argument("--variants", default="default", help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--split", action="store_true", help="time docker run and docker commit of each step apart")
    args = parser.parse_args(argv)
    names = [n for n in args.variants.split(",") if n]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    why = available()
    if why:
        parser.error(why)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="dindjobs-nested-"))
    log(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    try:
        if args.split:
            wrapper = BenchWrapper(work, log)
            try:
                wrapper.up()
                split = run_commit_split(work, wrapper, args.pairs, args.files, log)
            finally:
                wrapper.down()
            for part in ("run", "commit"):
                r = stats.ratio_summary(split["nested"][part], split["host"][part])
                print(f"docker {part}: nested/host {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}), "
                      f"nested {stats.fmt_metric(stats.summary(split['nested'][part], 's'))} s, "
                      f"host {stats.fmt_metric(stats.summary(split['host'][part], 's'))} s")
        results = compare_variants(work, [VARIANTS[n] for n in names], args.pairs, args.warmup, args.files, log) \
            if names else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if results:
        print(experiment_table(results))
    print(f"load after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
