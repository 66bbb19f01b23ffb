"""jenkins.py against the Jenkins stand-in: items, errors, restarts, builds and logs."""

from __future__ import annotations

import pytest

from dindjobs.config import Secret, Settings
from dindjobs.errors import JenkinsAPIError, JenkinsAuthError, JenkinsError, JenkinsNotFoundError
from dindjobs.jenkins.client import Jenkins
from dindjobs.standin import User
from support.net import free_port
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, admin_user, job_xml, wait_until

FOLDER = "<com.cloudbees.hudson.plugins.folder.Folder><description/></com.cloudbees.hudson.plugins.folder.Folder>"
VIEW = ("<hudson.model.ListView><name>{name}</name><jobNames>"
        "<comparator class=\"hudson.util.CaseInsensitiveComparator\"/></jobNames></hudson.model.ListView>")


def connect(standin, user=ADMIN_USER, password=None, token=ADMIN_TOKEN) -> Jenkins:
    if password is not None:
        settings = Settings(url=standin.url, user=user, password=Secret(password, "test"), timeout=10)
    else:
        settings = Settings(url=standin.url, user=user, token=Secret(token, "test"), timeout=10)
    return Jenkins(settings)


@pytest.fixture
def client(standin):
    jenkins = connect(standin)
    yield jenkins
    jenkins.close()


def test_identity_and_server_headers(client, standin):
    who = client.whoami()
    assert who["name"] == ADMIN_USER and who["anonymous"] is False
    info = client.server_info()
    assert info["identity"] == standin.identity and info["session"] == standin.session
    assert info["version"]


def test_items_lifecycle_and_one_request_listing(client, standin):
    client.create_job("f", FOLDER)
    client.create_job("f/a b", job_xml("echo 1"))
    client.create_view("My view", VIEW.format(name="My view"))
    assert "echo 1" in client.get_job_config("f/a b")
    client.update_job("f/a b", job_xml("echo 2"))
    assert "echo 2" in client.get_job_config("F/A B")  # names are case-insensitive
    client.disable_job("f/a b")
    assert client.job_info("f/a b", tree="disabled")["disabled"] is True
    client.enable_job("f/a b")

    mark = len(standin.requests)
    listing = client.list_items()
    assert len(standin.requests) - mark == 1
    assert listing.job("f").is_folder and not listing.job("f/a b").is_folder
    assert listing.job("f/a b").name == "f/a b" and "My view" in listing.views and "all" in listing.views

    client.update_view("My view", VIEW.format(name="My view").replace("<jobNames>", "<description>x</description><jobNames>"))
    assert "<description>x</description>" in client.get_view_config("My view")
    client.delete_view("My view")
    client.delete_job("f")
    assert client.list_items().jobs == {}


def test_listing_follows_folders_deeper_than_one_request(client):
    path = []
    for level in range(12):
        path.append(f"l{level}")
        client.create_job("/".join(path), FOLDER)
    client.create_job("/".join([*path, "deep"]), job_xml("true"))
    listing = client.list_items()
    assert listing.job("/".join([*path, "deep"])) is not None
    assert len(listing.jobs) == 13


def test_accurate_errors(client, standin):
    with pytest.raises(JenkinsNotFoundError) as info:
        client.create_job("missing/job", job_xml("true"))
    assert info.value.message == "404 folder 'missing' (parent of job 'missing/job') does not exist"
    with pytest.raises(JenkinsNotFoundError, match="404 job 'nope' does not exist"):
        client.get_job_config("nope")
    with pytest.raises(JenkinsAPIError) as info:
        client.create_job("bad", "<matrix-project/>")  # a type the stand-in cannot load
    assert info.value.status == 500 and "rejected the XML" in info.value.message
    with pytest.raises(JenkinsAPIError) as info:
        client.create_job("dup", job_xml("true"))
        client.create_job("DUP", job_xml("true"))
    assert info.value.status == 400 and "already exists" in info.value.message


def test_bad_credentials_are_401_not_a_vague_auth_failure(standin):
    client = connect(standin, password="wrong-password-3f9a")
    with pytest.raises(JenkinsAuthError) as info:
        client.list_items()
    assert info.value.status == 401
    assert info.value.message.startswith("401 bad credentials for user 'admin'")
    assert "wrong-password-3f9a" not in info.value.one_line()


def test_missing_permission_is_named(standin_factory):
    standin = standin_factory(users=[admin_user(), User("bob", Secret("bob-password", "test"))])
    standin.restrict("bob", ["Overall/Read", "Job/Read", "Job/Discover"])
    client = connect(standin, user="bob", password="bob-password")
    assert client.list_items().jobs == {}
    with pytest.raises(JenkinsAuthError) as info:
        client.create_job("x", job_xml("true"))
    assert info.value.status == 403
    assert info.value.message == "403 user 'bob' is missing the hudson.model.Item.Create permission for job 'x'"


def test_restart_is_noticed_on_a_read_and_the_crumb_renewed_before_the_next_post(standin):
    client = connect(standin, password=ADMIN_PASSWORD)  # password: POSTs need a session-bound crumb
    client.create_job("before", job_xml("true"))
    standin.restart()
    client.list_items()  # a read sees the new X-Jenkins-Session
    assert client.restarts_seen == 1
    mark = len(standin.requests)
    client.create_job("after", job_xml("true"))
    log = standin.requests[mark:]
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/crumbIssuer/api/json", 200), ("POST", "/createItem", 200)]


def test_stale_crumb_is_renewed_once_on_403(standin):
    client = connect(standin, password=ADMIN_PASSWORD)
    client.create_job("before", job_xml("true"))
    standin.restart()
    mark = len(standin.requests)
    client.create_job("after", job_xml("true"))  # first request after the restart is a POST
    statuses = [(r.path, r.status) for r in standin.requests[mark:]]
    assert statuses == [("/createItem", 403), ("/crumbIssuer/api/json", 200), ("/createItem", 200)]


def test_build_queue_log_and_stop(client):
    client.create_job("hello", job_xml("echo hello", "echo done"))
    queue_id = client.trigger("hello")
    number = wait_until(lambda: (client.queue_item(queue_id).get("executable") or {}).get("number"),
                        what="build started")
    text, start, more = "", 0, True
    while more:
        chunk, start, more = client.progressive_log("hello", number, start)
        text += chunk
    assert "hello" in text and text.rstrip().endswith("Finished: SUCCESS")
    assert client.console_text("hello", number) == text
    info = client.build_info("hello", number)
    assert info["result"] == "SUCCESS" and info["queueId"] == queue_id

    client.create_job("param", job_xml("echo value=$P", params=[("P", "default")]))
    queued = client.trigger("param", {"P": "given value"})
    number = wait_until(lambda: (client.queue_item(queued).get("executable") or {}).get("number"), what="start")
    wait_until(lambda: not client.build_info("param", number)["inProgress"], what="param build done")
    assert "value=given value" in client.console_text("param", number)

    client.create_job("slow", job_xml("sleep 30"))
    queued = client.trigger("slow")
    number = wait_until(lambda: (client.queue_item(queued).get("executable") or {}).get("number"), what="start")
    client.stop_build("slow", number)
    wait_until(lambda: not client.build_info("slow", number)["inProgress"], what="aborted")
    assert client.build_info("slow", number)["result"] == "ABORTED"


def test_error_text_from_jenkins_keeps_its_utf8(client):
    client.create_job("svc0-ä", job_xml("true"))
    with pytest.raises(JenkinsAPIError, match="400 A job already exists with the name .svc0-ä."):
        client.create_job("svc0-ä", job_xml("true"))


@pytest.mark.parametrize("no_proxy", ["", "127.0.0.1"])
def test_the_environments_proxy_and_no_proxy_still_apply(standin, monkeypatch, no_proxy):
    """The client resolves them once for its server, not on every request: same outcome."""
    dead_proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens: a proxied request fails
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    client = Jenkins(Settings(url=standin.url, user=ADMIN_USER, token=Secret(ADMIN_TOKEN, "test"), timeout=5), retries=0)
    try:
        if no_proxy:
            assert client.whoami()["name"] == ADMIN_USER
        else:
            with pytest.raises(JenkinsError):
                client.whoami()
    finally:
        client.close()
