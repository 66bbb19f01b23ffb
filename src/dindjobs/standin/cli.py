"""Command line of the stand-in (argparse, so it runs with a bare ``python3`` in the image).

``python3 -m dindjobs.standin --home DIR --port N [--host H] [--startup-delay S] [--users FILE]
[--quiet-period S] [--executors N] [--anonymous-read] [--root-url URL] [--casc FILE] [--plugin-file FILE]
[--fail-boot]``. Logs go to stderr;
SIGTERM (or Ctrl-C) stops it cleanly with exit code 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from dindjobs.standin.app import StandIn
from dindjobs.standin.security import parse_users_file


def serve(home: str | Path, port: int = 8080, host: str = "127.0.0.1", startup_delay: float = 0.0,
          users_file: str | Path | None = None, quiet_period: float = 5.0, executors: int = 2,
          anonymous_read: bool = False, root_url: str | None = None, restart_delay: float = 2.0,
          restart_down: float = 0.5, fail_boot: bool = False, casc: str | None = None,
          plugin_file: str | None = None) -> int:
    """Run a stand-in in the foreground until SIGTERM or SIGINT; returns the exit code.

    Without ``users_file``, the admin comes from ``JENKINS_ADMIN_ID`` and
    ``JENKINS_ADMIN_PASSWORD_FILE`` (see :func:`~dindjobs.standin.security.admin_from_environment`).
    With ``casc`` (a JCasC file), security, users and executors come from it instead.
    """
    log = logging.getLogger("dindjobs.standin")
    try:
        users = parse_users_file(users_file) if users_file else None
    except (OSError, ValueError) as exc:
        log.error("cannot read users file: %s", exc)
        return 1
    try:
        standin = StandIn(home, host=host, port=port, users=users, anonymous_read=anonymous_read,
                          startup_delay=startup_delay, quiet_period=quiet_period, executors=executors,
                          root_url=root_url, restart_delay=restart_delay, restart_down=restart_down,
                          casc=casc, plugin_file=plugin_file)
        standin.start(wait=False)
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    if fail_boot:
        standin.fail_boot("java.lang.IllegalStateException: boot failure requested with --fail-boot")
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        standin.stop()
    log.info("stopped")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m dindjobs.standin",
                                description="A Jenkins 2.580 stand-in (REST API, queue, shell builds).")
    p.add_argument("--home", required=True, help="Jenkins home directory (jobs/, builds, secrets).")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (0 picks a free one). Default 8080.")
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on. Default 127.0.0.1.")
    p.add_argument("--startup-delay", type=float, default=0.0, metavar="S",
                   help="Seconds of 503 'Jenkins is getting ready to work' after each start.")
    p.add_argument("--users", metavar="FILE",
                   help="Users file: one name:password or name:password:apitoken per line. Default: "
                        "JENKINS_ADMIN_ID and the password in JENKINS_ADMIN_PASSWORD_FILE.")
    p.add_argument("--quiet-period", type=float, default=5.0, metavar="S", help="Global quiet period. Default 5.")
    p.add_argument("--executors", type=int, default=2, metavar="N", help="Build executors. Default 2.")
    p.add_argument("--anonymous-read", action="store_true", help="Let anonymous users read (Overall/Read).")
    p.add_argument("--root-url", metavar="URL", help="Configured Jenkins URL (default: none, as after setup).")
    p.add_argument("--casc", metavar="FILE", default=os.environ.get("CASC_JENKINS_CONFIG") or None,
                   help="Configuration as Code file(s) for security, users, executors and the system message, "
                        "read at each start as JCasC does. Default: $CASC_JENKINS_CONFIG.")
    p.add_argument("--plugin-file", metavar="FILE",
                   help="plugins.txt: install these plugins into HOME/plugins first (placeholders; the stand-in "
                        "loads what HOME/plugins holds, as Jenkins does).")
    p.add_argument("--fail-boot", action="store_true",
                   help="Test aid: behave like a Jenkins whose boot failed (500 on every path).")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python3 -m dindjobs.standin``."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(args.home, port=args.port, host=args.host, startup_delay=args.startup_delay,
                 users_file=args.users, quiet_period=args.quiet_period, executors=args.executors,
                 anonymous_read=args.anonymous_read, root_url=args.root_url, fail_boot=args.fail_boot,
                 casc=args.casc, plugin_file=args.plugin_file)
