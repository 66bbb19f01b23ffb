"""A Jenkins stand-in in its own process, with a line protocol for the benchmark driver.

Run as ``python -m bench.standin_host --home DIR --users FILE [--startup-delay S] [--request-delay S]``. It hosts
:class:`dindjobs.standin.app.StandIn` (so the clients' CPU and memory are measured apart from the
server's) and talks on stdin/stdout:

- at start it prints ``LISTENING <port>``, then ``READY <epoch seconds>`` the moment the
  stand-in switches to ready (taken in this process, right after the switch, so a waiter's
  latency is measured from the real transition, not from a log line read later);
- ``counts`` prints one JSON line ``{"total", "reads", "writes", "by_method"}`` over the requests
  answered since the last ``reset``; ``reset`` clears them; ``quit`` (or EOF) stops the server;
- ``restart DELAY DOWN`` restarts it like ``/restart`` (DELAY seconds of 503 "restarting", then
  DOWN seconds with the port closed, then a boot) and prints ``OK`` at once; ``restarted`` waits
  for the restart to end and prints ``RESTARTED <seconds from the command to ready again>``.

``--request-delay S`` makes it a slower Jenkins double: every request waits S seconds in its
handler thread before it is answered (requests still overlap, as in Jetty's thread pool). It
models what a real Jenkins spends per request (XStream, disk, security checks) that the
stand-in does not; it exists for benchmarks only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from dindjobs.standin import app, server
from dindjobs.standin.app import StandIn
from dindjobs.standin.security import parse_users_file

READS = ("GET", "HEAD")


def request_counts(requests) -> dict:
    """Totals of logged requests (anything with a ``method``) by kind."""
    by_method = Counter(r.method for r in requests)
    reads = sum(n for m, n in by_method.items() if m in READS)
    return {"total": sum(by_method.values()), "reads": reads, "writes": sum(by_method.values()) - reads,
            "by_method": dict(sorted(by_method.items()))}


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _Restart:
    """One restart at a time, timed from the command to the stand-in being ready again."""

    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        self._done = threading.Event()
        self._seconds = 0.0

    def begin(self, delay: float, down: float) -> None:
        self._done.clear()
        started = time.monotonic()
        self.standin.restart_down = down

        def run() -> None:
            self.standin.restart(delay=delay, wait=True, timeout=300)
            self._seconds = time.monotonic() - started
            self._done.set()

        threading.Thread(target=run, daemon=True).start()

    def seconds(self, timeout: float = 600) -> float:
        if not self._done.wait(timeout):
            raise RuntimeError("the restart did not end")
        return self._seconds


def slow_down(delay: float) -> None:
    """Every request handled from now on waits ``delay`` seconds first (see the module doc)."""
    handle = server.Handler._handle

    def delayed(self) -> None:
        time.sleep(delay)
        handle(self)

    for method in ("do_GET", "do_POST", "do_HEAD", "do_PUT", "do_DELETE"):
        setattr(server.Handler, method, delayed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="stand-in host for the benchmarks")
    parser.add_argument("--home", required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--startup-delay", type=float, default=0.0)
    parser.add_argument("--request-delay", type=float, default=0.0, help="seconds added to every request")
    args = parser.parse_args(argv)
    if args.request_delay > 0:
        slow_down(args.request_delay)
    # The stand-in must answer without Nagle's delayed-ACK stall (40 ms a response, which Jetty
    # never has): a 500-job `jenkins-jobs update` took 26 s with it and 5.8 s without. It sets
    # TCP_NODELAY itself since 74d70d6; refuse to measure an older one.
    if not getattr(server.Handler, "disable_nagle_algorithm", False):
        raise SystemExit("standin_host: this stand-in answers with Nagle's algorithm on; numbers would be wrong")
    app.MAX_LOGGED = 10**7  # counts are taken per run (after a reset); never trim mid-run
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="standin: %(levelname)s %(message)s")

    # The image's plugins (folders among them), as the wrapper has them.
    plugin_file = Path(__file__).resolve().parents[1] / "dind-image" / "plugins.txt"
    standin = StandIn(args.home, port=args.port, users=parse_users_file(args.users),
                      startup_delay=args.startup_delay, quiet_period=0.0, plugin_file=plugin_file)
    standin.start(wait=False)
    _say(f"LISTENING {standin.port}")

    def announce() -> None:
        standin.wait_ready(args.startup_delay + 120)
        _say(f"READY {time.time():.6f}")

    threading.Thread(target=announce, daemon=True).start()
    restart = _Restart(standin)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "counts":
                _say(json.dumps(request_counts(list(standin.requests))))
            elif command == "reset":
                standin.requests.clear()
                _say("OK")
            elif command == "quit":
                break
            elif command.startswith("restart "):
                restart.begin(*(float(v) for v in command.split()[1:3]))
                _say("OK")
            elif command == "restarted":
                _say(f"RESTARTED {restart.seconds():.6f}")
            elif command:
                _say(f"ERROR unknown command {command!r}")
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
