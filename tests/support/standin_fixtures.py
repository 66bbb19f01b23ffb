"""Pytest fixtures for the Jenkins stand-in (registered in tests/conftest.py via ``pytest_plugins``).

Fixtures:

- ``standin``: a running :class:`dindjobs.standin.StandIn` on a free loopback port, ready, with
  one admin user (``ADMIN_USER`` / ``ADMIN_PASSWORD``, API token ``ADMIN_TOKEN``), a 0.05 s quiet
  period and two executors; its home is ``tmp_path / "standin-home"``. Stopped after the test.
- ``standin_factory``: ``make(**kwargs) -> StandIn`` for anything else. Keyword arguments are
  those of ``StandIn`` (``startup_delay``, ``quiet_period``, ``anonymous_read``, ``executors``,
  ``restart_delay``, ``restart_down``, ``post_production_delay``, ``root_url``, ``csrf``,
  ``port``, ``users``, ``casc``, ``plugin_file`` (default: ``IMAGE_PLUGIN_FILE``, the image's
  plugins.txt; None for a home without plugins); ``users=None`` takes the admin from ``JENKINS_ADMIN_ID`` /
  ``JENKINS_ADMIN_PASSWORD_FILE``), plus ``home`` (default: a fresh directory under
  ``tmp_path``) and ``start`` (default True; with False you get a stopped instance to
  ``.start(wait=False)`` yourself). Every instance made is stopped after the test.
- ``standin_client``: a :class:`Client` for ``standin`` authenticated with the admin *password*
  and holding a valid crumb + session cookie (so its POSTs pass the CSRF filter).
- ``standin_env``: the ``standin`` plus ``DINDJOBS_URL``, ``DINDJOBS_USER`` and
  ``DINDJOBS_TOKEN`` pointing at it (on top of ``clean_env``), for CLI tests.

Useful on a StandIn: ``.url``, ``.port``, ``.home``, ``.session`` (``X-Jenkins-Session``, None
unless ready), ``.identity`` (``X-Instance-Identity``), ``.phase``, ``.requests`` /
``.writes()`` (logged method, path, status, query, user), ``.restart(delay=None, wait=True,
safe=False)``, ``.fail_boot()``, ``.finish_startup()`` (end a long ``startup_delay`` now),
``.wait_ready()``, ``.stop()``, ``.restrict(user, perms, item=None)``, and ``.model`` (the
live item tree, ``.model.queue``, ``.model.find("a/b")``).

Helpers: ``job_xml(*shell_commands, params=[(name, default)], concurrent=False,
description="")`` (a freestyle config.xml), ``wait_until(fn, timeout)`` (poll until truthy),
``Client(url, auth=None)`` (a ``requests`` session with paths relative to the URL, no automatic
redirects, ``.fetch_crumb()``), ``admin_user()`` and ``start_standin_process(home, port, *args)``
(``python -m dindjobs.standin`` as a child process, stderr piped; the caller terminates it).
For a loopback port nobody listens on ("connection refused" tests): ``support.net.free_port()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar
from xml.sax.saxutils import escape

import pytest
import requests

from dindjobs.config import Secret
from dindjobs.standin import StandIn, User

ADMIN_USER = "admin"
ADMIN_PASSWORD = "standin-admin-password"
ADMIN_TOKEN = "11" + "5a7d" * 8
SRC = Path(__file__).resolve().parents[2] / "src"
# The image's plugin list: stand-ins made by the fixtures have these installed, as the image does.
IMAGE_PLUGIN_FILE = Path(__file__).resolve().parents[2] / "dind-image" / "plugins.txt"
IMAGE_CASC_FILE = Path(__file__).resolve().parents[2] / "dind-image" / "casc" / "jenkins.yaml"


T = TypeVar("T")


def job_xml(*commands: str, params: Iterable[tuple[str, str]] = (), concurrent: bool = False,
            description: str = "") -> str:
    """A freestyle job's config.xml: one ``hudson.tasks.Shell`` step per command, string parameters."""
    defs = "".join(
        f"<hudson.model.StringParameterDefinition><name>{escape(n)}</name><defaultValue>{escape(d)}</defaultValue>"
        "</hudson.model.StringParameterDefinition>" for n, d in params)
    props = (f"<hudson.model.ParametersDefinitionProperty><parameterDefinitions>{defs}"
             "</parameterDefinitions></hudson.model.ParametersDefinitionProperty>") if defs else ""
    steps = "".join(f"<hudson.tasks.Shell><command>{escape(c)}</command></hudson.tasks.Shell>" for c in commands)
    return ("<?xml version='1.0' encoding='UTF-8'?>\n<project>\n"
            f"  <description>{escape(description)}</description>\n  <keepDependencies>false</keepDependencies>\n"
            f"  <properties>{props}</properties>\n  <scm class=\"hudson.scm.NullSCM\"/>\n"
            f"  <concurrentBuild>{'true' if concurrent else 'false'}</concurrentBuild>\n"
            f"  <builders>{steps}</builders>\n  <publishers/>\n  <buildWrappers/>\n</project>\n")


def wait_until(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> T:
    """Call ``fn`` until it returns something truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def admin_user() -> User:
    """The default admin: password ``ADMIN_PASSWORD`` and API token ``ADMIN_TOKEN``."""
    user = User(ADMIN_USER, Secret(ADMIN_PASSWORD, "test fixture"))
    user.add_token(ADMIN_TOKEN, "fixture")
    return user




def start_standin_process(home: Path, port: int, *extra: str, env: dict[str, str] | None = None,
                          python: str = sys.executable) -> subprocess.Popen:
    """Start ``python -m dindjobs.standin --home HOME --port PORT *extra``; stderr is a pipe."""
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = str(SRC) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.Popen([python, "-m", "dindjobs.standin", "--home", str(home), "--port", str(port), *extra],
                            env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Client:
    """``requests`` against a stand-in: paths relative to its URL, redirects not followed."""

    def __init__(self, url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.auth = auth
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.url.rstrip("/") + "/" + path.lstrip("/"), **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def head(self, path: str, **kwargs) -> requests.Response:
        return self.request("HEAD", path, **kwargs)

    def fetch_crumb(self) -> str:
        """Get a crumb (this creates the session cookie) and send it with every later request."""
        r = self.get("crumbIssuer/api/json")
        r.raise_for_status()
        data = r.json()
        self.session.headers[data["crumbRequestField"]] = data["crumb"]
        return data["crumb"]


@pytest.fixture
def standin_factory(tmp_path):
    """``make(**kwargs)``: a StandIn (started and ready unless ``start=False``); all stopped at teardown."""
    made: list[StandIn] = []

    def make(home: str | os.PathLike[str] | None = None, start: bool = True, **kwargs) -> StandIn:
        if home is None:
            home = tmp_path / f"standin-{len(made) + 1}"
        kwargs.setdefault("users", [admin_user()])
        kwargs.setdefault("quiet_period", 0.05)
        kwargs.setdefault("restart_delay", 0.1)
        kwargs.setdefault("plugin_file", IMAGE_PLUGIN_FILE)
        instance = StandIn(home, **kwargs)
        made.append(instance)
        if start:
            instance.start()
        return instance

    yield make
    for instance in made:
        instance.stop()


@pytest.fixture
def standin(standin_factory, tmp_path) -> StandIn:
    """A ready stand-in with the fixture admin (see the module docstring)."""
    return standin_factory(home=tmp_path / "standin-home")


@pytest.fixture
def standin_client(standin) -> Client:
    """A Client for ``standin`` with the admin password, a session cookie and a valid crumb."""
    client = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    client.fetch_crumb()
    return client


@pytest.fixture
def standin_env(standin, clean_env, monkeypatch) -> StandIn:
    """``standin`` with DINDJOBS_URL / DINDJOBS_USER / DINDJOBS_TOKEN set to reach it."""
    monkeypatch.setenv("DINDJOBS_URL", standin.url)
    monkeypatch.setenv("DINDJOBS_USER", ADMIN_USER)
    monkeypatch.setenv("DINDJOBS_TOKEN", ADMIN_TOKEN)
    return standin
