"""Measure the wrapper image: start-to-ready of the nested daemon, and the size it adds.

    .venv/bin/python tests/image/measure_image.py [--runs 5]

Builds (or reuses) the offline image, starts a wrapper like the tests do, then times `docker
start` -> nested `/_ping` answers, after a clean `docker stop` and after `docker kill`. The
wrapper runs `sleep infinity` instead of Jenkins so that only the daemon's readiness is timed.
Prints JSON. Not a test: timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.dind import build_image, run_wrapper  # noqa: E402
from support.engine import find_engine  # noqa: E402


def time_to_ready(wrapper, how: str) -> float:
    if how == "stop":
        wrapper.container.stop(timeout=60)
    else:
        wrapper.container.kill()
    wrapper.container.wait(timeout=60)
    start = time.monotonic()
    wrapper.container.start()
    wrapper.wait_nested_ready(timeout=120)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = find_engine()
    if engine is None:
        print("no Docker engine", file=sys.stderr)
        return 1
    client = docker.DockerClient(base_url=engine.docker_host, timeout=300)
    image = build_image(engine.docker_host, offline=True)
    wrapper_size = client.images.get(image).attrs["Size"]
    base_size = client.images.get("dindjobs-offline-base:trixie").attrs["Size"]
    with tempfile.TemporaryDirectory() as tmp:
        wrapper = run_wrapper(client, Path(tmp), image=image, command=["sleep", "infinity"])
        try:
            first = wrapper.wait_nested_ready(timeout=120)
            after_stop = [time_to_ready(wrapper, "stop") for _ in range(args.runs)]
            after_kill = [time_to_ready(wrapper, "kill") for _ in range(args.runs)]
            reported = [line.rsplit("after ", 1)[1] for line in wrapper.logs().splitlines() if "nested dockerd ready after" in line]
        finally:
            wrapper.remove()
    print(json.dumps({
        "security_mode": "privileged" if wrapper.privileged else "caps",
        "first_start_to_ready_s": round(first, 2),
        "start_to_ready_after_stop_s": [round(t, 2) for t in after_stop],
        "start_to_ready_after_stop_median_s": round(statistics.median(after_stop), 2),
        "start_to_ready_after_kill_s": [round(t, 2) for t in after_kill],
        "start_to_ready_after_kill_median_s": round(statistics.median(after_kill), 2),
        "entrypoint_reported_ready": reported,
        "image_size_mb": round(wrapper_size / 1e6, 1),
        "base_size_mb": round(base_size / 1e6, 1),
        "added_on_base_mb": round((wrapper_size - base_size) / 1e6, 1),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
