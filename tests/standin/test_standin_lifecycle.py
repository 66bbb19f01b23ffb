"""Lifecycle, command line, users and secrets, identity headers."""

from __future__ import annotations

import base64
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dindjobs.standin import StandIn
from dindjobs.standin.security import admin_from_environment, parse_users_file
from support.net import free_port
from support.standin_fixtures import (
    ADMIN_PASSWORD,
    ADMIN_TOKEN,
    ADMIN_USER,
    SRC,
    Client,
    job_xml,
    start_standin_process,
    wait_until,
)

BARE_PYTHON = "/usr/bin/python3"


def state_of(url: str) -> str:
    """What a poller sees: refused, loading, restarting, failed, or the HTTP status."""
    try:
        r = requests.get(url + "api/json", auth=(ADMIN_USER, ADMIN_TOKEN), timeout=5)
    except requests.ConnectionError:
        return "refused"
    if r.status_code == 503:
        return "restarting" if "Jenkins is restarting" in r.text else "loading"
    return str(r.status_code)


def test_fail_boot_answers_500_everywhere(standin):
    standin.fail_boot()
    for method, path in [("GET", ""), ("GET", "api/json"), ("POST", "createItem"), ("GET", "login")]:
        r = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN)).request(method, path)
        assert r.status_code == 500 and "Jenkins failed to start" in r.text, path
        assert "X-Jenkins" not in r.headers


def test_a_broken_home_fails_the_boot(standin_factory, tmp_path):
    home = tmp_path / "broken"
    home.mkdir()
    (home / "jobs").write_text("not a directory")
    standin = standin_factory(home=home, start=False)
    standin.start(wait=True)
    r = requests.get(standin.url + "api/json", timeout=5)
    assert r.status_code == 500 and "FileExistsError" in r.text


def test_an_unusable_admin_secret_fails_the_boot(standin_factory, tmp_path, monkeypatch):
    empty = tmp_path / "empty-password"
    empty.write_text("")
    monkeypatch.setenv("JENKINS_ADMIN_PASSWORD_FILE", str(empty))
    standin = standin_factory(users=None)
    r = requests.get(standin.url + "whoAmI/api/json", timeout=5)
    assert r.status_code == 500 and "SecretError" in r.text and "is empty" in r.text
    assert standin.phase == "FAILED"


def test_fail_boot_flag_of_the_module(tmp_path):
    port = free_port()
    users = tmp_path / "users"
    users.write_text(f"{ADMIN_USER}:{ADMIN_PASSWORD}\n")
    proc = start_standin_process(tmp_path / "home", port, "--users", str(users), "--fail-boot")
    try:
        assert wait_for_states(f"http://127.0.0.1:{port}/", proc, "500")[-1] == "500"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_restart_goes_restarting_refused_loading_ready(standin_factory):
    standin = standin_factory(restart_delay=1.5, restart_down=1.0, startup_delay=60, start=False)
    standin.start(wait=False)
    standin.finish_startup()
    standin.wait_ready()
    session = standin.session
    r = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN)).post("restart")
    assert r.status_code == 302
    seen = [state_of(standin.url)]
    assert seen[0] == "restarting"
    deadline = time.monotonic() + 30
    while seen[-1] != "loading" and time.monotonic() < deadline:
        state = state_of(standin.url)
        if state != seen[-1]:
            seen.append(state)
        time.sleep(0.02)
    assert seen == ["restarting", "refused", "loading"]
    standin.finish_startup()
    standin.wait_ready()
    r = requests.get(standin.url + "api/json", auth=(ADMIN_USER, ADMIN_TOKEN), timeout=5)
    assert r.status_code == 200 and r.headers["X-Jenkins-Session"] != session


def test_safe_restart_waits_for_running_builds(standin_factory):
    standin = standin_factory()
    gate = standin.home / "go"
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    c.post("createItem?name=j", data=job_xml(f"while [ ! -e {gate} ]; do sleep 0.02; done"),
           headers={"Content-Type": "text/xml"})
    assert c.get("safeRestart").status_code == 200  # GET: the confirmation page
    qid = int(c.post("job/j/build").headers["Location"].rstrip("/").rsplit("/", 1)[1])
    wait_until(lambda: c.get(f"queue/item/{qid}/api/json").json().get("executable"))
    session = standin.session
    assert c.post("safeRestart").status_code == 302
    root = c.get("api/json")
    assert root.status_code == 200 and root.json()["quietingDown"] is True  # still serving while building
    assert standin.session == session
    gate.touch()
    standin.wait_ready(30)
    wait_until(lambda: standin.session not in (None, session), what="new session")
    assert c.get("job/j/1/api/json").json()["result"] == "SUCCESS"  # the build finished, not aborted


def test_identity_header_is_stable_per_home_and_fresh_for_a_new_home(standin_factory, tmp_path):
    first = standin_factory(home=tmp_path / "one")
    r = requests.get(first.url + "api/json", auth=(ADMIN_USER, "wrong"), timeout=5)
    assert r.status_code == 401 and r.headers["X-Instance-Identity"] == first.identity
    der = base64.b64decode(first.identity)
    assert der[0] == 0x30 and len(der) > 256  # shaped like an RSA public key (SubjectPublicKeyInfo)
    first.restart()
    assert requests.get(first.url + "login", timeout=5).headers["X-Instance-Identity"] == first.identity
    first.stop()
    again = standin_factory(home=tmp_path / "one")
    assert again.identity == first.identity
    other = standin_factory(home=tmp_path / "two")
    assert other.identity != first.identity


def test_who_am_i_and_me(standin_factory):
    standin = standin_factory()
    anonymous = requests.get(standin.url + "whoAmI/api/json", timeout=5).json()
    assert anonymous == {"_class": "hudson.security.WhoAmI", "name": "anonymous", "anonymous": True,
                         "authenticated": True, "authorities": ["anonymous"]}
    admin = requests.get(standin.url + "whoAmI/api/json", auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=5).json()
    assert admin["name"] == ADMIN_USER and admin["anonymous"] is False and "authenticated" in admin["authorities"]
    assert requests.get(standin.url + "me/api/json", timeout=5).status_code == 403
    readable = standin_factory(anonymous_read=True)
    r = requests.get(readable.url + "me/api/json", timeout=5)
    assert r.status_code == 403 and "Authentication required" in r.text
    me = requests.get(standin.url + "me/api/json", auth=(ADMIN_USER, ADMIN_TOKEN), timeout=5).json()
    assert me["id"] == ADMIN_USER and me["absoluteUrl"] == f"{standin.url}user/{ADMIN_USER}"


def test_generated_api_token_works_without_crumb_and_survives_restart(standin):
    c = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    c.fetch_crumb()
    r = c.post("me/descriptorByName/jenkins.security.ApiTokenProperty/generateNewToken",
               data={"newTokenName": "ci"})
    data = r.json()
    assert r.status_code == 200 and data["status"] == "ok" and data["data"]["tokenName"] == "ci"
    token = data["data"]["tokenValue"]
    assert len(token) == 34 and token not in (standin.home / "users" / ADMIN_USER / "apiTokens.json").read_text()
    standin.restart()
    with_token = Client(standin.url, (ADMIN_USER, token))
    assert with_token.post("createItem?name=t", data=job_xml(), headers={"Content-Type": "text/xml"}).ok


def test_users_file_format(tmp_path):
    good = tmp_path / "users"
    good.write_text("# comment\n\nalice:pw1\nbob:pw2:11abcdef\n")
    users = parse_users_file(good)
    assert [u.name for u in users] == ["alice", "bob"]
    assert users[0].password_matches("pw1") and users[1].token_matches("11abcdef")
    bad = tmp_path / "bad"
    bad.write_text("carol:secret-pw:tok:extra\n")
    with pytest.raises(ValueError) as err:
        parse_users_file(bad)
    assert f"{bad}:1" in str(err.value) and "secret-pw" not in str(err.value)


def test_admin_from_the_image_secret_mechanism(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    user = admin_from_environment(tmp_path, {"JENKINS_ADMIN_ID": "boss", "JENKINS_ADMIN_PASSWORD_FILE": str(secret)})
    assert user.name == "boss" and user.password_matches("from-file")
    assert "from-file" not in repr(user.password)
    # Without the file: a random password in <home>/secrets/initialAdminPassword, mode 0600.
    home = tmp_path / "home"
    user = admin_from_environment(home, {"JENKINS_ADMIN_PASSWORD_FILE": str(tmp_path / "missing")})
    initial = home / "secrets" / "initialAdminPassword"
    assert user.name == "admin" and user.password_matches(initial.read_text().strip())
    assert stat.S_IMODE(initial.stat().st_mode) == 0o600
    assert admin_from_environment(home, {"JENKINS_ADMIN_PASSWORD_FILE": "/nonexistent"}).password_matches(
        initial.read_text().strip())  # generated once, reused


def test_secrets_stay_out_of_logs(standin_factory, caplog):
    caplog.set_level(logging.DEBUG)
    standin = standin_factory()
    c = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    c.fetch_crumb()
    c.post("createItem?name=x", data="<project><broken>", headers={"Content-Type": "text/xml"})
    requests.get(standin.url + "api/json", auth=(ADMIN_USER, ADMIN_PASSWORD + "x"), timeout=5)
    requests.get(standin.url + "api/json", auth=(ADMIN_USER, ADMIN_TOKEN), timeout=5)
    text = caplog.text + repr(standin.requests)
    assert "uncaught" not in text  # a bad config is an expected 500, not a crash
    for secret in (ADMIN_PASSWORD, ADMIN_TOKEN):
        assert secret not in text
    assert any(r.status == 401 for r in standin.requests)


def wait_for_states(url: str, proc: subprocess.Popen, until: str, timeout: float = 30) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        state = state_of(url)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"never reached {until}: {seen}")


@pytest.mark.skipif(not Path(BARE_PYTHON).exists(), reason="Debian's python3 is not installed")
def test_module_runs_on_bare_python_refused_loading_ready_sigterm(tmp_path):
    """``python3 -m dindjobs.standin`` with no site-packages at all (as in the offline image)."""
    port = free_port()
    users = tmp_path / "users"
    users.write_text(f"{ADMIN_USER}:{ADMIN_PASSWORD}:{ADMIN_TOKEN}\n")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([BARE_PYTHON, "-S", "-m", "dindjobs.standin", "--home", str(tmp_path / "home"),
                             "--port", str(port), "--users", str(users), "--startup-delay", "2.5",
                             "--quiet-period", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen = wait_for_states(f"http://127.0.0.1:{port}/", proc, "200")
        assert seen[-2:] == ["loading", "200"] and set(seen) <= {"refused", "loading", "200"}
        c = Client(f"http://127.0.0.1:{port}/", (ADMIN_USER, ADMIN_TOKEN))
        assert c.post("createItem?name=j", data=job_xml("echo from-bare-python"),
                      headers={"Content-Type": "text/xml"}).ok
        assert c.post("job/j/build").status_code == 201
        wait_until(lambda: "Finished: SUCCESS" in c.get("job/j/1/consoleText").text)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    log = err.decode()
    assert "Jenkins is fully up and running" in log and "stopped" in log
    assert ADMIN_PASSWORD not in log and ADMIN_TOKEN not in log
    assert (tmp_path / "home" / "jobs" / "j" / "builds" / "1" / "log").exists()


def test_dindjobs_standin_command_uses_the_image_secret_mechanism(tmp_path):
    port = free_port()
    secret = tmp_path / "admin-password"
    secret.write_text("image-secret\n")
    env = dict(os.environ, JENKINS_ADMIN_ID="root-admin", JENKINS_ADMIN_PASSWORD_FILE=str(secret))
    dindjobs = str(Path(sys.executable).with_name("dindjobs"))
    proc = subprocess.Popen([dindjobs, "standin", "--home", str(tmp_path / "home"), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_states(f"http://127.0.0.1:{port}/", proc, "401")  # the poller's user does not exist here
        r = requests.get(f"http://127.0.0.1:{port}/whoAmI/api/json", auth=("root-admin", "image-secret"), timeout=5)
        assert r.json()["name"] == "root-admin"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert "image-secret" not in err.decode() and "fully up and running" in err.decode()


def test_start_standin_process_helper_and_port_in_use(tmp_path, standin):
    proc = start_standin_process(tmp_path / "home", standin.port)  # the port is taken
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and "cannot start" in err.decode()


def test_in_process_api_basics(tmp_path):
    s = StandIn(tmp_path / "h", users=[], quiet_period=0)
    assert s.phase == "DOWN" and s.session is None
    s.start()
    try:
        assert s.phase == "READY" and len(s.session) == 8 and s.url.startswith("http://127.0.0.1:")
        requests.get(s.url + "api/json", timeout=5)
        assert s.requests[-1].path == "/api/json" and s.requests[-1].status == 403 and s.writes() == []
    finally:
        s.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(s.url, timeout=5)
