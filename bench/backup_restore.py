"""Backup and restore throughput, and wrapper downtime during a backup, on a realistic home.

Generates a Jenkins home in the stand-in's on-disk layout (``--jobs`` jobs with
``--builds`` builds each: config.xml, nextBuildNumber, builds/N/build.xml and a ``--log-kib``
console log), loads it into a fresh wrapper on the local engine, then measures
``dindjobs backup`` (stop, archive, start, ready again) and ``dindjobs restore`` into fresh
volumes. For scale, the same archive is also extracted by a plain GNU ``tar -x`` (owners,
modes and xattrs kept, as restore does) into a scratch directory on the disk that holds the
engine's volumes, once before and once after the restore. Everything it creates is named
``djbench-<random>`` and removed at the end.

    .venv/bin/python bench/backup_restore.py [--jobs 500] [--builds 2] [--log-kib 16] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from dindjobs.backup.operations import backup, restore
from dindjobs.config import load_settings
from dindjobs.jenkins.client import Jenkins
from dindjobs.jenkins.readiness import wait_ready
from dindjobs.wrapper.container import Wrapper
from dindjobs.wrapper.engine import connect
from dindjobs.wrapper.secrets import ensure_admin_password
from dindjobs.wrapper.spec import WrapperSpec

CONFIG = """<?xml version='1.1' encoding='UTF-8'?>
<project>
  <description>bench job {i}</description>
  <keepDependencies>false</keepDependencies>
  <properties/>
  <scm class="hudson.scm.NullSCM"/>
  <canRoam>true</canRoam>
  <disabled>false</disabled>
  <triggers/>
  <concurrentBuild>false</concurrentBuild>
  <builders>
    <hudson.tasks.Shell>
      <command>echo building {i}; docker build -t bench-{i} ctx/</command>
    </hudson.tasks.Shell>
  </builders>
  <publishers/>
  <buildWrappers/>
</project>
"""
BUILD = """<?xml version='1.1' encoding='UTF-8'?>
<build>
  <actions>
    <hudson.model.CauseAction>
      <causes>
        <hudson.model.Cause_-UserIdCause>
          <userId>admin</userId>
        </hudson.model.Cause_-UserIdCause>
      </causes>
    </hudson.model.CauseAction>
  </actions>
  <queueId>{queue}</queueId>
  <timestamp>{ts}</timestamp>
  <startTime>{ts}</startTime>
  <result>SUCCESS</result>
  <duration>{duration}</duration>
  <charset>UTF-8</charset>
  <keepLog>false</keepLog>
  <builtOn />
  <workspace>/var/jenkins_home/workspace/{job}</workspace>
  <hudsonVersion>2.492.3</hudsonVersion>
</build>
"""


# A nested image from the wrapper's static busybox: 1 000 files of 8 KiB, then a blob, in layers.
NESTED_IMAGE = r"""set -e
w=$(mktemp -d); mkdir -p $w/base $w/img; cp /bin/busybox $w/base/busybox
printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'RUN ["/bin/busybox", "--install", "-s", "/bin"]' > $w/base/Dockerfile
printf '%s\n' 'FROM bench/base' 'RUN mkdir /small && for i in $(seq 1 1000); do head -c 8192 /dev/urandom > /small/$i; done' \
  'RUN head -c {blob} /dev/urandom > /blob' > $w/img/Dockerfile
DOCKER_BUILDKIT=0 docker build -q -t bench/base $w/base >/dev/null 2>&1
DOCKER_BUILDKIT=0 docker build -q -t bench/nested $w/img >/dev/null 2>&1
docker image inspect -f '{{{{.Size}}}} bytes' bench/nested
"""


def _log(rng: random.Random, job: str, number: int, size: int) -> bytes:
    lines = [f"Started by user admin\nRunning as SYSTEM\nBuilding in workspace /var/jenkins_home/workspace/{job}\n"]
    total = len(lines[0])
    step = 0
    while total < size:
        line = f"Step {step}/40 : RUN make -j2 target-{rng.randrange(10**6)} ---> {rng.getrandbits(64):016x}\n"
        lines.append(line)
        total += len(line)
        step += 1
    lines.append("Finished: SUCCESS\n")
    return "".join(lines).encode()


def home_tar(path: Path, jobs: int, builds: int, log_kib: int, seed: int = 8) -> int:
    """Write a tar of ``jenkins_home/jobs/...`` (owned by uid 1000) to ``path``; returns its data bytes."""
    rng = random.Random(seed)
    data = 0
    now = int(time.time() * 1000)

    def add(tar: tarfile.TarFile, name: str, content: bytes | None = None) -> None:
        nonlocal data
        info = tarfile.TarInfo(f"jenkins_home/{name}")
        info.uid = info.gid = 1000
        info.mtime = now // 1000
        if content is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        else:
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
            data += len(content)

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "jobs")
        queue = 0
        for i in range(jobs):
            job = f"job-{i:04d}"
            add(tar, f"jobs/{job}")
            add(tar, f"jobs/{job}/config.xml", CONFIG.format(i=i).encode())
            add(tar, f"jobs/{job}/nextBuildNumber", f"{builds + 1}\n".encode())
            add(tar, f"jobs/{job}/builds")
            for number in range(1, builds + 1):
                queue += 1
                add(tar, f"jobs/{job}/builds/{number}")
                add(tar, f"jobs/{job}/builds/{number}/build.xml",
                    BUILD.format(queue=queue, ts=now - queue * 60000, duration=rng.randrange(1000, 90000),
                                 job=job).encode())
                add(tar, f"jobs/{job}/builds/{number}/log", _log(rng, job, number, log_kib * 1024))
    return data


def _chunks(path: Path, size: int = 1 << 20):
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def plain_tar_x(archive: Path, docker_root: str | None, fallback: Path) -> dict[str, object]:
    """Extract ``archive`` with GNU tar next to the engine's data root (the same disk as the
    volumes, when that directory is local); seconds and whether it was the same disk."""
    root = Path(docker_root) if docker_root else None
    base = root.parent if root is not None and root.is_dir() else fallback
    same_disk = root is not None and root.is_dir() and base.stat().st_dev == root.stat().st_dev
    target = Path(tempfile.mkdtemp(prefix="djbench-tarx-", dir=base))
    try:
        started = time.monotonic()
        subprocess.run(["tar", "--extract", f"--file={archive}", f"--directory={target}", "--same-owner",
                        "--preserve-permissions", "--numeric-owner", "--xattrs", "--xattrs-include=*"], check=True)
        seconds = time.monotonic() - started
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return {"seconds": round(seconds, 3), "same_disk": same_disk, "where": str(base)}


def _jenkins(settings, wrapper: Wrapper, password: Path) -> Jenkins:
    from dindjobs.backup.operations import jenkins_settings

    return Jenkins(jenkins_settings(settings, wrapper.url, password), timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--builds", type=int, default=2, help="builds per job")
    parser.add_argument("--log-kib", type=int, default=16, help="size of each build log")
    parser.add_argument("--nested-mib", type=int, default=0,
                        help="also build a nested image of about this many MiB (1 000 small files and a blob)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--suffix", default=None, help=".tar.gz or .tar.zst (default: zst when available)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="djbench-"))
    name = f"djbench-{uuid.uuid4().hex[:6]}"
    os.environ["DINDJOBS_STATE_DIR"] = str(work / "state")
    settings = load_settings({"name": name})
    client = connect()
    wrapper = Wrapper(client, name)
    port = args.port or _free_port()
    say = (lambda _: None) if args.json else (lambda text: print(f"  {text}", file=sys.stderr))
    report: dict[str, object] = {"jobs": args.jobs, "builds": args.jobs * args.builds, "log_kib": args.log_kib}
    try:
        started = time.monotonic()
        tar = work / "home.tar"
        report["generated_bytes"] = home_tar(tar, args.jobs, args.builds, args.log_kib)
        report["generate_seconds"] = round(time.monotonic() - started, 2)
        password = ensure_admin_password(settings.wrapper_state_dir).path
        spec = WrapperSpec(name=name, port=port, password_file=password)
        wrapper.up(spec, progress=say)
        wrapper.wait_healthy(300, progress=say)
        wrapper.stop()
        with wrapper.loader(spec.image) as put:
            put("/var", _chunks(tar))
        wrapper.start()
        jenkins = _jenkins(settings, wrapper, password)
        wait_ready(jenkins, 300, daemon_check=wrapper.nested_daemon_state)
        found = jenkins.job_builds(all_builds=True)
        jenkins.close()
        if args.nested_mib:
            code, out = wrapper.exec(["sh", "-c", NESTED_IMAGE.format(blob=max(args.nested_mib - 8, 1) * 2**20)])
            if code != 0:
                raise RuntimeError(f"building the nested image failed: {out[-2000:]}")
            report["nested_image"] = out.strip().splitlines()[-1]
        report["loaded"] = {"jobs": len(found), "builds": sum(len(b) for b in found.values())}

        suffix = args.suffix or (".tar.zst" if _zstd() else ".tar.gz")
        archive = work / f"bench{suffix}"
        result = backup(wrapper, settings, archive, with_images=True, progress=say)
        report["backup"] = dataclasses.asdict(result) | {"volumes": None}

        wrapper.down(remove_volumes=True)
        docker_root = client.info().get("DockerRootDir")
        tar_runs = [plain_tar_x(archive, docker_root, work)]
        restored = restore(wrapper, settings, archive, progress=say)
        tar_runs.append(plain_tar_x(archive, docker_root, work))
        report["restore"] = dataclasses.asdict(restored) | {"notes": None}
        report["restore"]["total_seconds"] = round(restored.verify_seconds + restored.restore_seconds, 3)
        tar_seconds = sorted(run["seconds"] for run in tar_runs)
        report["tar_x"] = {"runs": tar_runs, "mb_per_s": round(restored.data_bytes / 1e6 / tar_seconds[0], 1),
                           "restore_vs_tar_x": round(restored.restore_seconds / tar_seconds[0], 2),
                           "restore_with_verify_vs_tar_x": round(report["restore"]["total_seconds"] / tar_seconds[0], 2)}
    finally:
        wrapper.down(remove_volumes=True)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        b, r = report["backup"], report["restore"]
        print(f"home: {report['loaded']['jobs']} jobs, {report['loaded']['builds']} builds, "
              f"{b['data_bytes'] / 1e6:.1f} MB of data in {b['entries']} entries (archive {b['archive_bytes'] / 1e6:.1f} MB)")
        if "nested_image" in report:
            print(f"nested image: {report['nested_image']} in the nested daemon (--nested-mib)")
        print(f"backup:  {b['mb_per_s']} MB/s ({b['seconds']:.2f} s archiving), wrapper downtime {b['downtime_seconds']:.2f} s")
        print(f"restore: {r['mb_per_s']} MB/s extracting ({r['restore_seconds']:.2f} s) after a {r['verify_seconds']:.2f} s "
              f"verify pass; Jenkins then saw {r['jobs']} jobs and {r['builds']} builds")
        t = report["tar_x"]
        runs = ", ".join(f"{run['seconds']:.2f} s" for run in t["runs"])
        disk = "same disk as the volumes" if t["runs"][0]["same_disk"] else f"NOT the volumes' disk ({t['runs'][0]['where']})"
        print(f"tar -x:  {t['mb_per_s']} MB/s, plain GNU tar of the same archive ({runs}; {disk})")
        print(f"restore / tar -x (fastest run): {t['restore_vs_tar_x']}x extracting, "
              f"{t['restore_with_verify_vs_tar_x']}x with the verify pass (target: within 2x)")
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _zstd() -> bool:
    from dindjobs.backup.compression import zstd_available

    return zstd_available()


if __name__ == "__main__":
    sys.exit(main())
