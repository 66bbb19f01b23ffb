"""Waiting until Jenkins is really usable (what python-jenkins' ``wait_for_normal_op`` cannot do).

Usable means: it answers, it is past loading (no 503), our credentials give an identity that
is not anonymous, and that identity can read the root API. Refused or reset connections, time
outs and 503 "getting ready"/"restarting" are "not yet"; a 500 on several probes in a row is a
boot failure and fails fast; a missing Overall/Read permission fails fast too. Polling is a
short fixed interval (default 0.1 s) because every probe is one cheap GET, so ``wait`` returns
within a fraction of a second of Jenkins becoming ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dindjobs.config import Settings
from dindjobs.errors import (
    JenkinsAPIError,
    JenkinsAuthError,
    JenkinsConnectionError,
    JenkinsError,
    JenkinsNotReadyError,
    TimeoutExpired,
)
from dindjobs.jenkins.client import Jenkins
from dindjobs.progress import Progress

DEFAULT_INTERVAL = 0.1
BOOT_FAILURE_PROBES = 3  # consecutive 500s that mean "Jenkins failed to start"


@dataclass
class Probe:
    """One look at Jenkins: a short state text, and whether it is ready."""

    state: str
    ready: bool = False
    boot_failure: bool = False


def probe(client: Jenkins) -> Probe:
    """Probe once, without retries: whoAmI (auth and identity), then the root API (permission)."""
    try:
        who = client.whoami(retries=0)
    except JenkinsError as exc:
        return _probe_of(exc)
    if who.get("anonymous", who.get("name") == "anonymous"):
        return Probe("answering, but our credentials give only anonymous")
    try:
        client.get_json("api/json?tree=mode,quietingDown", what="the Jenkins root", retries=0)
    except JenkinsAuthError as exc:
        if exc.status == 401:
            return Probe("401 bad credentials")
        raise  # authenticated but without Overall/Read: waiting will not fix it
    except JenkinsError as exc:
        return _probe_of(exc)
    return Probe("ready", ready=True)


def _probe_of(exc: JenkinsError) -> Probe:
    if isinstance(exc, JenkinsConnectionError):
        text = exc.message
        if "refused" in text:
            return Probe("connection refused")
        if "did not answer" in text:
            return Probe("no answer (request timed out)")
        return Probe("connection reset")
    if isinstance(exc, JenkinsNotReadyError):
        text = exc.message
        return Probe("503 getting ready" if "getting ready" in text
                     else "503 restarting" if "restarting" in text else "503 unavailable")
    status = getattr(exc, "status", None)
    if status == 401:
        return Probe("401 bad credentials")
    if status == 500:
        return Probe("500 boot failure", boot_failure=True)
    if status == 403:
        return Probe("403 forbidden")
    return Probe(f"{status or 'error'}: {exc.one_line()}")


def wait_ready(
    client: Jenkins,
    timeout: float,
    *,
    on_progress: Progress | None = None,
    interval: float = DEFAULT_INTERVAL,
    daemon_check: Callable[[], str | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Poll until Jenkins is usable; returns ``{url, version, user, seconds}``.

    ``on_progress(text)`` is told each new state. ``daemon_check()`` (for a wrapper, e.g.
    :meth:`dindjobs.wrapper.container.Wrapper.nested_daemon_state`) returns None once the nested
    Docker daemon answers, else a short state text. Raises
    :class:`TimeoutExpired` naming the last state and how long it lasted, or a
    :class:`JenkinsError` when waiting cannot help (boot failure, missing permission).
    """
    start = clock()
    deadline = start + timeout
    state, since = "", start
    failures_500 = 0
    while True:
        current = probe(client)
        failures_500 = failures_500 + 1 if current.boot_failure else 0
        if failures_500 >= BOOT_FAILURE_PROBES:
            raise JenkinsAPIError(f"Jenkins at {client.url} failed to start: 500 on every request "
                                  f"(boot failure); see its log", status=500)
        text = current.state
        if current.ready and daemon_check is not None:
            daemon_state = daemon_check()
            if daemon_state is not None:
                text, current.ready = f"Jenkins ready; nested Docker daemon: {daemon_state}", False
        now = clock()
        if text != state:
            state, since = text, now
            if on_progress is not None:
                on_progress(f"waiting for {client.url}: {text}" if not current.ready else f"{client.url}: ready")
        if current.ready:
            return {"url": client.url, "version": client.version, "server": client.server_label,
                    "user": client.user, "seconds": round(now - start, 3)}
        if now >= deadline:
            raise TimeoutExpired(f"Jenkins at {client.url} not ready after {timeout:g} s; "
                                 f"last state: {state} for {_seconds(now - since)}")
        sleep(max(0.0, min(interval, deadline - now)))


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def wait(settings: Settings, timeout: float, *, on_progress: Progress | None = None,
         daemon_check: Callable[[], str | None] | None = None, interval: float = DEFAULT_INTERVAL) -> dict:
    """`dindjobs wait`: Jenkins at ``settings.url`` usable with our credentials, and, with a
    ``daemon_check`` (see :func:`wait_ready`), the wrapper's nested daemon answering."""
    client = Jenkins(settings, timeout=min(settings.timeout, 5.0), retries=0)
    try:
        info = wait_ready(client, timeout, on_progress=on_progress, interval=interval, daemon_check=daemon_check)
    finally:
        client.close()
    info["nested_daemon"] = "ready" if daemon_check is not None else "not checked"
    return info
