"""One test per point of the contract's "Behaviours a naive double gets wrong" (section 10).

Each test is named after its point and asserts what a real Jenkins 2.4xx does there.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from urllib.parse import quote

import jenkins
import pytest
import requests

from dindjobs.config import Secret
from dindjobs.standin import User
from dindjobs.standin.model import VERSION
from support.net import free_port
from support.standin_fixtures import (
    ADMIN_PASSWORD,
    ADMIN_TOKEN,
    ADMIN_USER,
    Client,
    admin_user,
    job_xml,
    wait_until,
)

XML_HEADERS = {"Content-Type": "text/xml; charset=utf-8"}


def path_of(full_name: str) -> str:
    return "".join(f"job/{quote(part, safe='')}/" for part in full_name.split("/"))


def create(client: Client, name: str, xml: str, parent: str = "") -> requests.Response:
    return client.post(f"{parent}createItem", params={"name": name}, data=xml.encode(), headers=XML_HEADERS)


def trigger(client: Client, full_name: str, params: dict | None = None) -> requests.Response:
    if params is None:
        return client.post(path_of(full_name) + "build")
    return client.post(path_of(full_name) + "buildWithParameters", params=params)


def queue_id(response: requests.Response) -> int:
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def executable(client: Client, qid: int) -> dict:
    def started():
        item = client.get(f"queue/item/{qid}/api/json").json()
        return item if item.get("executable") else None
    return wait_until(started, what=f"queue item {qid} to start")["executable"]


def finished(client: Client, full_name: str, number: int) -> dict:
    def done():
        info = client.get(f"{path_of(full_name)}{number}/api/json").json()
        return info if not info["inProgress"] else None
    return wait_until(done, what=f"{full_name} #{number} to finish")


def test_naive_01_crumb_bound_to_session_and_user_not_ip(standin):
    client = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    crumb = client.fetch_crumb()
    assert len(crumb) == 64 and int(crumb, 16) >= 0
    create(client, "j", job_xml())
    # Same crumb and session: accepted, as a header or as a request parameter.
    assert client.post("job/j/disable").status_code == 302
    no_header = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    no_header.session.cookies = client.session.cookies
    assert no_header.post("job/j/enable", params={"Jenkins-Crumb": crumb}).status_code == 302
    assert no_header.post("job/j/enable", data={"Jenkins-Crumb": crumb}).status_code == 302
    # Same crumb without the session cookie (a client that lost its cookies): rejected.
    lost = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    r = lost.post("job/j/disable", headers={"Jenkins-Crumb": crumb})
    assert r.status_code == 403 and "No valid crumb was included in the request" in r.text
    # Another session's crumb: rejected. Another client IP (X-Forwarded-For): accepted, since
    # Jenkins 2.543 (the pinned 2.580.2 too) no longer puts the client IP in the crumb.
    other = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    other.fetch_crumb()
    other.session.headers["Jenkins-Crumb"] = crumb
    assert other.post("job/j/disable").status_code == 403
    assert client.post("job/j/enable", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 302
    # Another user on the same session: rejected.
    standin.model.realm.users["bob"] = User("bob", Secret("bobpw", "test"))
    bob = Client(standin.url, ("bob", "bobpw"))
    bob.session.cookies = client.session.cookies
    assert bob.post("job/j/disable", headers={"Jenkins-Crumb": crumb}).status_code == 403
    # Password auth without any crumb: rejected; API token auth without crumb: exempt.
    assert Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD)).post("job/j/disable").status_code == 403
    assert Client(standin.url, (ADMIN_USER, ADMIN_TOKEN)).post("job/j/disable").status_code == 302
    # Only POST is checked.
    assert Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD)).get("job/j/api/json").status_code == 200


def test_naive_02_anonymous_gets_403_authentication_required_not_401(standin_factory):
    standin = standin_factory()
    anonymous = Client(standin.url)
    r = anonymous.get("api/json")
    assert r.status_code == 403 and r.reason == "Forbidden"
    assert "Authentication required" in r.text
    assert "WWW-Authenticate" not in r.headers
    assert r.headers["X-You-Are-Authenticated-As"] == "anonymous"
    assert r.headers["X-Required-Permission"] == "hudson.model.Hudson.Read"
    assert r.headers["X-Jenkins"] and r.headers["X-Jenkins-Session"] and r.headers["X-Hudson"] == "1.395"
    # Bad credentials: 401 with a challenge, even where anonymous could read.
    readable = standin_factory(anonymous_read=True)
    assert Client(readable.url).get("api/json").status_code == 200
    bad = Client(readable.url, (ADMIN_USER, "wrong")).get("api/json")
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == 'Basic realm="Jenkins"'
    no_colon = Client(readable.url).get(
        "api/json", headers={"Authorization": "Basic " + base64.b64encode(b"admin").decode()})
    assert no_colon.status_code == 401


def test_naive_03_refused_then_503_everywhere_without_x_jenkins(standin_factory):
    port = free_port()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    # python-jenkins' waiter does not retry a refused connection: it raises.
    with pytest.raises(requests.ConnectionError):
        jenkins.Jenkins(f"http://127.0.0.1:{port}/", ADMIN_USER, ADMIN_PASSWORD).wait_for_normal_op(2)
    standin = standin_factory(port=port, startup_delay=60, start=False)
    standin.start(wait=False)
    admin = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    for method, path in [("GET", "api/json"), ("GET", "login"), ("GET", "whoAmI/api/json"),
                         ("GET", "crumbIssuer/api/json"), ("HEAD", "job/x/"), ("POST", "createItem")]:
        r = admin.request(method, path)
        assert r.status_code == 503, path
        assert "X-Jenkins" not in r.headers and "X-Instance-Identity" not in r.headers
        assert r.headers["Content-Type"].startswith("text/html")
        assert r.headers["Cache-Control"] == "no-cache,no-store,must-revalidate"
        if method == "GET":
            assert "Jenkins is getting ready to work" in r.text and "<title>Starting Jenkins" in r.text
    standin.finish_startup()
    standin.wait_ready(10)
    r = admin.get("api/json")
    assert r.status_code == 200 and r.headers["X-Jenkins"] == VERSION
    assert r.headers["X-Jenkins-Session"] == standin.session


def test_naive_04_queue_item_comes_before_the_build(standin_factory):
    standin = standin_factory(quiet_period=60)
    client = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(client, "j", job_xml("true"))
    qid = queue_id(trigger(client, "j"))
    waiting = client.get(f"queue/item/{qid}/api/json").json()
    assert waiting["_class"] == "hudson.model.Queue$WaitingItem"
    assert waiting["why"].startswith("In the quiet period. Expires in ")
    assert "executable" not in waiting and "cancelled" not in waiting
    assert waiting["timestamp"] > waiting["inQueueSince"]
    assert client.get("job/j/api/json").json()["lastBuild"] is None
    assert queue_id(client.post("job/j/build", params={"delay": "0sec"})) == qid  # "build now" pulls it in
    left = wait_until(lambda: (lambda i: i if "executable" in i else None)(
        client.get(f"queue/item/{qid}/api/json").json()), what="LeftItem")
    assert left["_class"] == "hudson.model.Queue$LeftItem" and left["why"] is None
    assert left["cancelled"] is False and left["executable"]["number"] == 1


def test_naive_05_duplicate_triggers_coalesce(standin_factory):
    standin = standin_factory(quiet_period=30)
    client = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(client, "plain", job_xml("sleep 30"))
    create(client, "param", job_xml("true", params=[("P", "x")]))
    first, second = trigger(client, "plain"), trigger(client, "plain")
    assert first.status_code == second.status_code == 201
    assert queue_id(first) == queue_id(second)
    p1 = trigger(client, "param", {"P": "a"})
    p2 = trigger(client, "param", {"P": "a"})
    assert p1.status_code == 201 and p2.status_code == 303
    assert queue_id(p2) == queue_id(p1)
    # python-jenkins follows the 303 to the item, which has no Location: it breaks.
    pj = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN)
    with pytest.raises(jenkins.EmptyResponseException):
        pj.build_job("param", {"P": "a"})
    assert trigger(client, "param", {"P": "b"}).status_code == 201
    assert queue_id(trigger(client, "param", {"P": "b"})) != queue_id(p1)
    # Once the build has started, a new trigger is a new item, Blocked behind the running build.
    assert queue_id(client.post("job/plain/build", params={"delay": "0sec"})) == queue_id(first)
    executable(client, queue_id(first))
    again = queue_id(client.post("job/plain/build", params={"delay": "0sec"}))
    assert again != queue_id(first)
    blocked = wait_until(lambda: (lambda i: i if i["_class"].endswith("BlockedItem") else None)(
        client.get(f"queue/item/{again}/api/json").json()), what="BlockedItem")
    assert blocked["why"].startswith("Build #1 is already in progress") and blocked["blocked"] is True
    assert client.post("job/plain/1/stop").status_code == 302


def test_naive_06_build_numbers_at_start_never_reused_and_queue_items_expire(standin):
    client = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(client, "j", job_xml("true"))
    # A cancelled queue item never gets a number: numbers are taken when a build starts.
    standin.model.queue.quiet_period = 30
    cancelled = queue_id(trigger(client, "j"))
    assert client.get("job/j/api/json").json()["nextBuildNumber"] == 1
    assert client.post("queue/cancelItem", params={"id": cancelled}).status_code == 204
    gone = client.get(f"queue/item/{cancelled}/api/json").json()
    assert gone["cancelled"] is True and gone["executable"] is None
    assert client.post("queue/cancelItem", params={"id": cancelled}).status_code == 404
    standin.model.queue.quiet_period = 0
    q1 = queue_id(trigger(client, "j"))
    assert q1 == cancelled + 1  # queue ids are one global counter
    assert executable(client, q1)["number"] == 1
    finished(client, "j", 1)
    assert client.post("job/j/1/doDelete").status_code == 302
    number = executable(client, queue_id(trigger(client, "j")))["number"]
    assert number == 2  # never reused after a delete
    finished(client, "j", 2)
    # Recreating the job starts again at #1.
    assert client.post("job/j/doDelete").status_code == 302
    create(client, "j", job_xml("true"))
    assert executable(client, queue_id(trigger(client, "j")))["number"] == 1
    # The item disappears some time after its build *started* (300 s in Jenkins).
    standin.model.queue.left_ttl = 0.0
    assert client.get(f"queue/item/{q1}/api/json").status_code == 404


def test_naive_07_result_null_while_building_and_post_production(standin_factory):
    standin = standin_factory(post_production_delay=60)
    client = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    create(client, "j", job_xml("echo start; sleep 0.4"))
    executable(client, queue_id(trigger(client, "j")))
    running = client.get("job/j/1/api/json").json()
    assert running["building"] is True and running["inProgress"] is True
    assert running["result"] is None and running["duration"] == 0
    post = wait_until(lambda: (lambda b: b if not b["building"] else None)(client.get("job/j/1/api/json").json()),
                      what="post-production")
    assert post["inProgress"] is True and post["result"] == "SUCCESS" and post["duration"] > 0
    assert "Finished:" not in client.get("job/j/1/consoleText").text
    assert client.get("job/j/1/logText/progressiveText", params={"start": 0}).headers.get("X-More-Data") == "true"
    standin.end_post_production()
    done = finished(client, "j", 1)
    assert done["building"] is False
    assert client.get("job/j/1/consoleText").text.endswith("Finished: SUCCESS\n")
    assert "X-More-Data" not in client.get("job/j/1/logText/progressiveText", params={"start": 0}).headers


def test_naive_08_status_codes_of_writes(standin_client, standin):
    c = standin_client
    r = create(c, "j", job_xml("true"))
    assert (r.status_code, r.content, "Location" in r.headers) == (200, b"", False)
    r = trigger(c, "j")
    assert r.status_code == 201 and r.content == b""
    assert r.headers["Location"] == f"{standin.url}queue/item/{queue_id(r)}/"
    r = c.post("job/j/config.xml", data=job_xml("false").encode(), headers=XML_HEADERS)
    assert (r.status_code, r.content, "Location" in r.headers) == (200, b"", False)
    view = "<hudson.model.ListView><name>v</name><jobNames><string>j</string></jobNames></hudson.model.ListView>"
    r = c.post("createView", params={"name": "v"}, data=view, headers=XML_HEADERS)
    assert (r.status_code, "Location" in r.headers) == (200, False)
    for path, target in [("job/j/disable", "job/j/"), ("job/j/enable", "job/j/"), ("quietDown", ""),
                         ("cancelQuietDown", ""), ("view/v/doDelete", "")]:
        r = c.post(path)
        assert r.status_code == 302, path
        assert r.headers["Location"] == standin.url + target
        assert c.get(r.headers["Location"][len(standin.url):]).ok
    r = c.post("createItem", data={"name": "f", "mode": "com.cloudbees.hudson.plugins.folder.Folder"})
    assert r.status_code == 302 and r.headers["Location"] == f"{standin.url}job/f/configure"
    assert c.get("job/f/configure").status_code == 200
    r = c.post("job/f/doDelete")
    assert r.status_code == 302 and r.headers["Location"] == standin.url
    r = c.post("createItem", params={"name": "copy", "mode": "copy", "from": "j"})
    assert r.status_code == 302 and c.get("job/copy/configure").status_code == 200


def test_naive_09_create_item_content_type_rules(standin_client):
    c = standin_client
    body = job_xml().encode()
    assert c.post("createItem?name=a", data=body, headers={"Content-Type": "text/xml; charset=utf-8"}).ok
    assert c.post("createItem?name=b", data=body, headers={"Content-Type": "application/xml"}).ok
    r = c.post("createItem?name=c", data=body, headers={"Content-Type": None})
    assert r.status_code == 400 and r.headers["X-Error"] == "No Content-Type header set"
    r = c.post("createItem?name=d", data={"x": "y"})
    assert r.status_code == 400 and r.headers["X-Error"] == "No mode given"
    r = c.post("createItem", data=body, headers={"Content-Type": "application/xml"})
    assert r.status_code == 400 and r.headers["X-Error"] == "Query parameter 'name' is required"
    r = c.post("createItem?name=e&mode=no.such.Type", data=b"", headers={"Content-Type": "text/plain"})
    assert r.status_code == 400 and "is known" in r.headers["X-Error"]
    assert [j["name"] for j in c.get("api/json").json()["jobs"]] == ["a", "b"]


def test_naive_10_config_xml_is_normalised_not_echoed(standin_client, standin):
    c = standin_client
    sent = ("\ufeff<?xml version='1.0' encoding='UTF-8'?>\r\n<!DOCTYPE project>\r\n<project>\r\n"
            "  <!-- kept -->\r\n  <description>it&apos;s &quot;q&quot; &#65; &lt;b&gt; &amp;</description>\r\n"
            "  <properties></properties>\r\n  <scm class='hudson.scm.NullSCM' b=\"2\"/>\r\n"
            "  <org.example.UnknownPlugin plugin='nope@1.0'><x/></org.example.UnknownPlugin>\r\n"
            "  <builders><hudson.tasks.Shell><command><![CDATA[echo <raw>]]></command></hudson.tasks.Shell></builders>\r\n"
            "</project>\r\n")
    assert create(c, "j", sent).status_code == 200
    r = c.get("job/j/config.xml")
    assert r.headers["Content-Type"] == "application/xml"
    assert r.text == ('<?xml version="1.0" encoding="UTF-8"?><project>\n  <!-- kept -->\n'
                      "  <description>it's \"q\" A &lt;b&gt; &amp;</description>\n  <properties/>\n"
                      '  <scm class="hudson.scm.NullSCM" b="2"/>\n'
                      '  <org.example.UnknownPlugin plugin="nope@1.0"><x/></org.example.UnknownPlugin>\n'
                      "  <builders><hudson.tasks.Shell><command><![CDATA[echo <raw>]]></command>"
                      "</hudson.tasks.Shell></builders>\n</project>")
    assert r.text != sent
    # A Jenkins-initiated save (disable) rewrites it the XStream way.
    c.post("job/j/disable")
    saved = c.get("job/j/config.xml").text
    assert saved.startswith("<?xml version='1.1' encoding='UTF-8'?>") and "<disabled>true</disabled>" in saved
    # On disk, in Jenkins' layout.
    assert (standin.home / "jobs" / "j" / "config.xml").read_text() == saved


def test_naive_11_job_names_case_insensitive_view_names_case_sensitive(standin_client, standin):
    c = standin_client
    assert create(c, "Foo", job_xml()).status_code == 200
    dup = create(c, "foo", job_xml())
    assert dup.status_code == 400 and "A job already exists with the name" in dup.headers["X-Error"]
    assert c.get("job/FOO/api/json?tree=name").json()["name"] == "Foo"
    pj = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN)
    with pytest.raises(jenkins.JenkinsException, match="unexpected job name"):
        pj.job_exists("foo")
    assert pj.job_exists("Foo")
    view = "<hudson.model.ListView><name>x</name></hudson.model.ListView>"
    assert c.post("createView?name=Mine", data=view, headers=XML_HEADERS).status_code == 200
    assert c.get("view/Mine/api/json?tree=name").json()["name"] == "Mine"
    assert c.get("view/mine/api/json?tree=name").status_code == 404
    assert c.get("view/All/api/json?tree=name").json()["name"] == "all"
    assert c.get("view/all/api/json?tree=name").json()["name"] == "all"


@pytest.mark.parametrize("name, message", [
    ("", "No name is specified"),
    (".", "\u201c.\u201d is not an allowed name"),
    ("..", "\u201c..\u201d is not an allowed name"),
    ("a.", "A name cannot end with \u2018.\u2019"),
    ("a\tb", "No control code is allowed"),
    *[(f"a{ch}b", f"\u2018{ch}\u2019 is an unsafe character") for ch in "?*/\\%!@#$^&|<>[]:;"],
])
def test_naive_12_name_validation_messages(standin_client, name, message):
    r = create(standin_client, name, job_xml())
    assert r.status_code == 400
    assert message.encode("utf-8") in r.headers["X-Error"].encode("latin-1")
    assert "<h1>Error</h1>" in r.text


def test_naive_12_name_checked_before_trim_created_trimmed(standin_client, standin):
    assert create(standin_client, "foo ", job_xml()).status_code == 200
    assert [j["name"] for j in standin_client.get("api/json").json()["jobs"]] == ["foo"]
    assert create(standin_client, " . ", job_xml()).status_code == 400  # "." after trimming
    for ok in ("a b", "x+=,(){}~'\"", "caf\u00e9"):
        assert create(standin_client, ok, job_xml()).status_code == 200, ok
    pj = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN)
    with pytest.raises(jenkins.JenkinsException, match=r"create\[bar \] failed"):
        pj.create_job("bar ", job_xml())
    assert pj.job_exists("bar")


def test_naive_13_url_encoding(standin, standin_client):
    c = standin_client
    pj = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN)
    pj.create_folder("my folder")
    pj.create_job("my folder/a b+c", job_xml("echo \"P=[$P]\"", params=[("P", "d")]))
    info = pj.get_job_info("my folder/a b+c")
    assert info["name"] == "a b+c" and info["fullName"] == "my folder/a b+c"
    assert info["url"] == f"{standin.url}job/my%20folder/job/a%20b+c/"  # Util.rawEncode keeps '+'
    # Empty segments collapse; folder paths must be /job/a/job/b/.
    assert c.get("//job//my%20folder///job/a%20b%2Bc/api/json?tree=name").json()["name"] == "a b+c"
    assert c.get("job/my%20folder/a%20b%2Bc/api/json").status_code == 404
    # Query strings are form-decoded: '+' is a space, '%2B' a plus sign.
    r = c.post("job/my%20folder/job/a%20b%2Bc/buildWithParameters?P=v+w%2Bx&delay=0sec")
    number = executable(c, queue_id(r))["number"]
    finished(c, "my folder/a b+c", number)
    assert "P=[v w+x]" in c.get(f"job/my%20folder/job/a%20b%2Bc/{number}/consoleText").text


def test_naive_14_trailing_slash_redirects_and_urls(standin_client, standin):
    c = standin_client
    create(c, "j", job_xml("true"))
    r = c.get("job/j?depth=1")
    assert r.status_code == 302 and r.headers["Location"] == f"{standin.url}job/j/?depth=1"
    assert c.get("job/j/").status_code == 200
    assert c.get("job/j/api/json").status_code == 200 and c.get("job/j/api/json/").status_code == 200
    loc = trigger(c, "j").headers["Location"]
    assert loc.endswith("/")
    item = c.get(loc[len(standin.url):] + "api/json").json()
    assert item["url"] == f"queue/item/{queue_id_from(loc)}/"
    assert item["task"]["url"] == f"{standin.url}job/j/"
    exe = executable(c, queue_id_from(loc))
    assert exe["url"] == f"{standin.url}job/j/1/"
    assert c.get("job/j/1").status_code == 302 and c.get("queue/item/1").status_code == 302
    assert c.get("queue/item/1/").headers["Content-Type"].startswith("text/plain")


def queue_id_from(location: str) -> int:
    return int(location.rstrip("/").rsplit("/", 1)[1])


def test_naive_15_head_is_not_get_everywhere(standin_client):
    c = standin_client
    c.post("createItem", data={"name": "f", "mode": "com.cloudbees.hudson.plugins.folder.Folder"})
    create(c, "j", job_xml())
    assert c.head("job/j/config.xml").status_code == 400
    for path in ("job/j/build", "job/j/doDelete", "job/j/disable", "createItem", "quietDown"):
        r = c.head(path)
        assert r.status_code == 405 and r.headers["Allow"] == "POST", path
        r = c.get(path)
        assert r.status_code == 405 and "This URL requires POST" in r.text, path
    head = c.head("api/json")
    assert head.status_code == 200 and head.content == b"" and int(head.headers["Content-Length"]) > 0
    assert c.get("job/f/createItem").status_code == 404  # a folder's createItem is @POST


def test_naive_16_404_without_discover_403_without_read(standin_factory):
    viewer = User("viewer", Secret("viewerpw", "test"))
    standin = standin_factory(users=[admin_user(), viewer])
    admin = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    for name in ("hidden", "discoverable", "readable"):
        create(admin, name, job_xml())
    standin.restrict("viewer", ["Overall/Read"])
    standin.restrict("viewer", ["Job/Discover"], item="discoverable")
    standin.restrict("viewer", ["Job/Read"], item="readable")
    v = Client(standin.url, ("viewer", "viewerpw"))
    assert v.get("job/hidden/api/json").status_code == 404
    r = v.get("job/discoverable/api/json")
    assert r.status_code == 403 and r.headers["X-Required-Permission"] == "hudson.model.Item.Read"
    assert "viewer is missing the Job/Read permission" in r.text
    assert v.get("job/readable/api/json").status_code == 200
    assert [j["name"] for j in v.get("api/json").json()["jobs"]] == ["readable"]
    pj = jenkins.Jenkins(standin.url, "viewer", "viewerpw")
    assert not pj.job_exists("hidden")  # python-jenkins: 404 means absent
    with pytest.raises(jenkins.JenkinsException, match=r"\[403\]"):
        pj.job_exists("discoverable")


def test_naive_17_tree_filtering_is_real(standin, standin_client):
    c = standin_client
    pj = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN)
    pj.create_folder("a")
    pj.create_folder("a/b")
    pj.create_folder("a/b/c")
    pj.create_job("a/b/c/deep", job_xml())
    pj.create_job("top", job_xml())
    data = c.get("api/json?tree=jobs[name]").json()
    assert data == {"_class": "hudson.model.Hudson", "jobs": [
        {"_class": "com.cloudbees.hudson.plugins.folder.Folder", "name": "a"},
        {"_class": "hudson.model.FreeStyleProject", "name": "top"}]}
    nested = c.get("api/json?tree=jobs[name,color,jobs]").json()["jobs"]
    assert nested[0]["jobs"] == [{"_class": "com.cloudbees.hudson.plugins.folder.Folder"}]  # unexpanded: _class only
    assert "color" not in nested[0] and "jobs" not in nested[1] and nested[1]["color"] == "notbuilt"
    # python-jenkins asks one level per request here, so it must re-query the unexpanded folders.
    names = sorted(j["fullname"] for j in pj.get_all_jobs(folder_depth_per_request=1))
    assert names == ["a", "a/b", "a/b/c", "a/b/c/deep", "top"]
    # depth: a nested job shows only name/url/color at depth 0, everything at depth 1.
    shallow = c.get("api/json").json()["jobs"][1]
    assert set(shallow) == {"_class", "name", "url", "color"}
    assert "builds" in c.get("api/json?depth=1").json()["jobs"][1]
    assert c.get("api/json?tree=jobs[name").status_code == 500
    assert c.get("api/json?depth=abc").status_code == 500
    assert "allBuilds" not in c.get("job/top/api/json").json()
    assert c.get("job/top/api/json?tree=allBuilds[number]").json()["allBuilds"] == []


def test_naive_18_parameterized_job_trigger_rules(standin, standin_client):
    c = standin_client
    create(c, "p", job_xml('echo "A=$A B=$B"', params=[("A", "da"), ("B", "db")]))
    create(c, "plain", job_xml("true"))
    r = c.post("job/p/build")
    assert r.status_code == 400 and r.headers["X-Error"] == "Nothing is submitted"
    assert c.post("job/plain/buildWithParameters?X=1").status_code == 500
    pj = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN)
    with pytest.raises(requests.HTTPError) as err:
        pj.build_job("p", {})  # an empty dict counts as "no parameters": /build, 400
    assert err.value.response.status_code == 400
    qid = pj.build_job("p", {"A": "given", "UNKNOWN": "ignored"})
    number = executable(c, qid)["number"]
    finished(c, "p", number)
    assert "A=given B=db" in pj.get_build_console_output("p", number)
    # The UI's json form submission is the way to /build a parameterized job.
    form = {"json": '{"parameter": [{"name": "B", "value": "fromform"}]}'}
    number = executable(c, queue_id(c.post("job/p/build", data=form)))["number"]
    finished(c, "p", number)
    assert "A=da B=fromform" in c.get(f"job/p/{number}/consoleText").text


def test_naive_19_error_bodies_are_html_pages_not_json(standin_client, standin):
    c = standin_client
    r = create(c, "bad", "<project><unclosed></project>")
    assert r.status_code == 500 and r.headers["Content-Type"].startswith("text/html")
    assert "Oops!" in r.text and "A problem occurred while processing the request" in r.text
    assert "Logging ID=" in r.text and "mismatched" not in r.text and "unclosed" not in r.text
    assert c.get("job/bad/api/json").status_code == 404  # nothing left behind
    assert not (standin.home / "jobs" / "bad").exists()
    r = create(c, "a?", job_xml())
    assert r.status_code == 400 and "<h1>Error</h1>" in r.text and "is an unsafe character" in r.headers["X-Error"]
    r = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD)).post("createItem?name=x")
    assert r.status_code == 403 and r.reason == "Forbidden"
    assert "<h2>HTTP ERROR 403 No valid crumb was included in the request</h2>" in r.text
    create(c, "dup", job_xml())
    for bad in (r, create(c, "dup", job_xml())):
        with pytest.raises(ValueError):
            bad.json()


def test_naive_20_403_reason_phrase_is_forbidden(standin_factory):
    viewer = User("viewer", Secret("viewerpw", "test"))
    standin = standin_factory(users=[admin_user(), viewer])
    standin.restrict("viewer", ["Overall/Read"])
    r = Client(standin.url, ("viewer", "viewerpw")).get("pluginManager/api/json?depth=2")
    assert r.status_code == 403 and r.reason == "Forbidden"
    # python-jenkins puts the reason phrase in its message; JJB looks for "Forbidden" in it.
    with pytest.raises(jenkins.JenkinsException, match="Forbidden"):
        jenkins.Jenkins(standin.url, "viewer", "viewerpw").get_plugins()
    plugins = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN).get_plugins()
    assert plugins["cloudbees-folder"]["shortName"] == "cloudbees-folder" and plugins["cloudbees-folder"]["active"]
    assert Client(standin.url, ("viewer", "nope")).get("api/json").reason == "Unauthorized"


def test_naive_21_console_text_never_empty_and_content_types(standin_client):
    c = standin_client
    create(c, "j", job_xml("sleep 0.3"))
    executable(c, queue_id(trigger(c, "j")))
    r = c.get("job/j/1/consoleText")
    assert r.status_code == 200 and r.text.startswith("Started by user admin\n")
    assert r.headers["Content-Type"] == "text/plain;charset=utf-8"
    assert c.get("job/j/config.xml").headers["Content-Type"] == "application/xml"
    assert c.get("api/json").headers["Content-Type"] == "application/json;charset=utf-8"
    finished(c, "j", 1)


def test_naive_22_restart_new_session_dead_crumbs_quiet_down_queues(standin_factory):
    standin = standin_factory()
    c = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    c.fetch_crumb()
    create(c, "j", job_xml("true"))
    session = c.get("api/json").headers["X-Jenkins-Session"]
    assert c.post("quietDown", params={"message": "maintenance"}).status_code == 302
    root = c.get("api/json").json()
    assert root["quietingDown"] is True and root["quietDownReason"] == "maintenance"
    r = trigger(c, "j")
    assert r.status_code == 201
    item = wait_until(lambda: (lambda i: i if i["_class"].endswith("BuildableItem") else None)(
        c.get(f"queue/item/{queue_id(r)}/api/json").json()), what="buildable")
    assert item["why"] == "Jenkins is about to shut down"
    standin.restart()
    after = c.get("api/json")
    assert after.headers["X-Jenkins-Session"] == standin.session != session
    assert after.json()["quietingDown"] is False  # a restart ends the quiet-down...
    assert executable(c, queue_id(r))["number"] == 1  # ...and the queued item survived it
    r = c.post("job/j/disable")
    assert r.status_code == 403 and "No valid crumb" in r.text
    c.fetch_crumb()
    assert c.post("job/j/disable").status_code == 302


def test_naive_23_jjb_cache_must_be_isolated(standin_factory, tmp_path):
    port = free_port()
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("- job:\n    name: cached\n    builders:\n      - shell: 'true'\n")
    ini = tmp_path / "jjb.ini"
    ini.write_text(f"[job_builder]\nignore_cache=False\n[jenkins]\nurl=http://127.0.0.1:{port}/\n"
                   f"user={ADMIN_USER}\npassword={ADMIN_TOKEN}\n")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path))
    jjb = [os.path.join(os.path.dirname(sys.executable), "jenkins-jobs"), "--conf", str(ini), "update", str(jobs)]

    first = standin_factory(port=port)
    subprocess.run(jjb, env=env, check=True, capture_output=True, timeout=120)
    assert first.model.find("cached") is not None
    identity = first.identity
    first.stop()
    fresh = standin_factory(port=port)  # a brand-new Jenkins at the same URL
    assert fresh.identity != identity  # what a server-keyed cache can detect
    subprocess.run(jjb, env=env, check=True, capture_output=True, timeout=120)
    assert fresh.requests == [] and fresh.model.find("cached") is None  # JJB's cache: no request at all
    subprocess.run(jjb[:3] + ["--flush-cache"] + jjb[3:], env=env, check=True, capture_output=True, timeout=120)
    assert fresh.model.find("cached") is not None
