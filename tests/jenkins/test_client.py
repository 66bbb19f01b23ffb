"""dindjobs.jenkins.client without a server: status mapping and the retry policy.

The retry tests script the HTTP transport (a requests adapter answering a fixed sequence of
statuses); everything Jenkins-specific (crumbs, restarts, auth) is tested against the stand-in
in test_client_standin.py.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
import requests
from requests.adapters import BaseAdapter

from dindjobs.config import Secret, Settings
from dindjobs.errors import (
    JenkinsAPIError,
    JenkinsAuthError,
    JenkinsConnectionError,
    JenkinsNotFoundError,
    JenkinsNotReadyError,
)
from dindjobs.jenkins.client import Jenkins

TOKEN = "tok-unit-5e3c1a"


def settings(**kw):
    return Settings(url="http://127.0.0.1:9/", user="admin", token=Secret(TOKEN, "test"), timeout=2.0, **kw)


def response(status, body=b"", headers=None, method="GET", url="http://127.0.0.1:9/x"):
    r = requests.Response()
    r.status_code = status
    r._content = body
    r.headers.update(headers or {})
    r.reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden", 500: "Server Error"}.get(status, "X")
    r.request = requests.Request(method, url).prepare()
    r.url = url
    return r


class Scripted(BaseAdapter):
    """Answers each request with the next item of ``script``: a status, or an exception to raise."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.seen: list[tuple[str, str]] = []

    def send(self, request, **kwargs):
        self.seen.append((request.method, request.url))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        status, body, headers = step if isinstance(step, tuple) else (step, b"{}", {})
        r = response(status, body, headers, request.method, request.url)
        r.request = request
        return r

    def close(self):
        pass


def client_with(script, **kw):
    client = Jenkins(settings(), backoff=0.0, **kw)
    adapter = Scripted(script)
    client._pj._session.mount("http://", adapter)
    return client, adapter


def test_status_mapping_is_accurate():
    c = Jenkins(settings())
    assert isinstance(c._error(response(401), "job 'a'", False), JenkinsAuthError)
    assert "401 bad credentials for user 'admin'" in c._error(response(401), "x", False).message
    perm = c._error(response(403, headers={"X-You-Are-Authenticated-As": "bob",
                                           "X-Required-Permission": "hudson.model.Item.Configure"}), "job 'a'", False)
    assert perm.message == "403 user 'bob' is missing the hudson.model.Item.Configure permission for job 'a'"
    anon = c._error(response(403, headers={"X-You-Are-Authenticated-As": "anonymous"}), "job 'a'", False)
    assert "authentication required" in anon.message
    missing = c._error(response(404), "folder 'f' (parent of job 'f/j')", False)
    assert isinstance(missing, JenkinsNotFoundError) and missing.message == "404 folder 'f' (parent of job 'f/j') does not exist"
    rejected = c._error(response(500), "job 'a'", True)
    assert rejected.message == "500 Jenkins rejected the XML of job 'a'" and rejected.status == 500
    bad = c._error(response(400, headers={"X-Error": "A job already exists with the name 'a'"}), "job 'a'", False)
    assert bad.message.startswith("400 A job already exists")
    ready = c._error(response(503, b"Jenkins is getting ready to work"), "x", False)
    assert isinstance(ready, JenkinsNotReadyError) and "getting ready" in ready.message
    for err in (perm, anon, missing, rejected, bad, ready):
        assert TOKEN not in err.one_line()


def test_idempotent_requests_retry_on_502_503_504_then_succeed():
    client, adapter = client_with([502, 503, 504, 200])
    assert client.get_json("api/json", what="root") == {}
    assert len(adapter.seen) == 4


def test_retries_are_bounded():
    client, adapter = client_with([503] * 10, retries=2)
    with pytest.raises(JenkinsNotReadyError, match="503 Jenkins is not ready"):
        client.get_json("api/json", what="root")
    assert len(adapter.seen) == 3


def test_non_idempotent_post_is_not_resent_after_a_503():
    client, adapter = client_with([(404, b"", {}), 503])  # crumb issuer absent, then the POST
    with pytest.raises(JenkinsNotReadyError, match="503 Jenkins is not ready .* for job 'j'"):
        client.create_job("j", "<project/>")
    assert [m for m, _ in adapter.seen] == ["GET", "POST"]


def test_connection_refused_is_retried_even_for_a_post_because_nothing_was_sent():
    refused = requests.ConnectionError("HTTPConnectionPool: Max retries exceeded ([Errno 111] Connection refused)")
    client, adapter = client_with([(404, b"", {}), refused, 200])
    client.create_job("j", "<project/>")
    assert [m for m, _ in adapter.seen] == ["GET", "POST", "POST"]


def test_connection_reset_fails_a_post_with_a_clear_message():
    client, _ = client_with([(404, b"", {}), requests.ConnectionError("Connection aborted: reset by peer")])
    with pytest.raises(JenkinsConnectionError, match=r"connection reset or lost") as caught:
        client.delete_job("j")
    assert TOKEN not in caught.value.one_line()


def test_create_in_a_folder_names_the_folder_on_404():
    client, adapter = client_with([(404, b"", {}), 404])
    with pytest.raises(JenkinsNotFoundError, match=r"^404 folder 'team' \(parent of job 'team/deploy'\) does not exist$"):
        client.create_job("team/deploy", "<project/>")
    assert adapter.seen[-1] == ("POST", "http://127.0.0.1:9/job/team/createItem?name=deploy")


def test_names_are_encoded_in_paths():
    client, adapter = client_with([200])
    client.get_json(client._job_path("a b/c+d", "config.xml"), what="x")
    assert adapter.seen == [("GET", "http://127.0.0.1:9/job/a%20b/job/c%2Bd/config.xml")]


def test_a_failed_500_push_is_an_api_error_not_an_auth_error():
    client, _ = client_with([(404, b"", {}), 500])
    with pytest.raises(JenkinsAPIError, match="500 Jenkins rejected the XML of job 'j'") as caught:
        client.update_job("j", "<bad")
    assert not isinstance(caught.value, JenkinsAuthError)


def test_job_info_asks_the_job_api_with_an_encoded_tree():
    client, adapter = client_with([(200, b'{"lastBuild": {"number": 7}}', {})])
    info = client.job_info("images/build hello", tree="lastBuild[number]")
    assert info == {"lastBuild": {"number": 7}}
    (method, url), = adapter.seen
    path, query = url.split("?", 1)
    assert (method, path) == ("GET", "http://127.0.0.1:9/job/images/job/build%20hello/api/json")
    assert parse_qs(query) == {"tree": ["lastBuild[number]"]}


def test_job_info_404_names_the_job():
    client, _ = client_with([(404, b"", {})])
    with pytest.raises(JenkinsNotFoundError, match="404 job 'images/nope' does not exist"):
        client.job_info("images/nope")


def test_trigger_with_a_delay_replaces_the_quiet_period_for_both_kinds_of_job():
    created = (201, b"", {"Location": "http://127.0.0.1:9/queue/item/12/"})
    client, adapter = client_with([(200, b'{"crumbRequestField": "C", "crumb": "x"}', {}), created, created])
    assert client.trigger("plain", delay=0) == 12
    assert client.trigger("param", {"P": "a b"}, delay=2.5) == 12
    urls = [url for method, url in adapter.seen if method == "POST"]
    assert urls == ["http://127.0.0.1:9/job/plain/build?delay=0sec",
                    "http://127.0.0.1:9/job/param/buildWithParameters?P=a+b&delay=2sec"]
