"""The stand-in's parts: XML normalisation, the tree/depth export, views, nodes, deletion."""

from __future__ import annotations

import jenkins
import pytest
import requests

from dindjobs.standin import api
from dindjobs.standin.model import VERSION
from dindjobs.standin.xmlconfig import BadConfig, normalise, read_settings
from support.standin_fixtures import ADMIN_PASSWORD, ADMIN_TOKEN, ADMIN_USER, Client, job_xml, wait_until


@pytest.mark.parametrize("given, stored", [
    ("<?xml version='1.0' encoding='UTF-8'?>\n<a/>\n", '<?xml version="1.0" encoding="UTF-8"?><a/>'),
    ("<?xml version='1.1'?><a></a>", '<?xml version="1.1" encoding="UTF-8"?><a/>'),
    ("<a x='1' y=\"&quot;\"><b>&apos;&#x41;&gt;</b></a>",
     '<?xml version="1.0" encoding="UTF-8"?><a x="1" y="&quot;"><b>\'A&gt;</b></a>'),
    ("<a>\r\n  <!--c--><![CDATA[<x>]]>\r\n</a>",
     '<?xml version="1.0" encoding="UTF-8"?><a>\n  <!--c--><![CDATA[<x>]]>\n</a>'),
    ("<!DOCTYPE a><a><?pi data?></a>", '<?xml version="1.0" encoding="UTF-8"?><a><?pi data?></a>'),
    ("<a z='2' a='1'/>", '<?xml version="1.0" encoding="UTF-8"?><a z="2" a="1"/>'),
])
def test_identity_transform_normalisation(given, stored):
    assert normalise(given) == stored
    assert normalise(given.encode("utf-8")) == stored


def test_normalisation_decodes_bytes_by_their_declaration():
    latin = "<?xml version='1.0' encoding='ISO-8859-1'?><a>caf\u00e9</a>".encode("latin-1")
    assert normalise(latin) == '<?xml version="1.0" encoding="UTF-8"?><a>caf\u00e9</a>'
    for bad in ("", "<a>", "<a></b>", "text"):
        with pytest.raises(BadConfig):
            normalise(bad)


def test_job_settings_from_config():
    s = read_settings(job_xml("echo 1", "echo 2", params=[("A", "x")], concurrent=True, description="d"))
    assert s.shell_steps == ["echo 1", "echo 2"] and s.concurrent and s.description == "d"
    assert [(p.name, p.default, p.value_class) for p in s.parameters] == [
        ("A", "x", "hudson.model.StringParameterValue")]


class Leaf(api.Bean):
    java_class = "x.Leaf"

    def props(self, ctx):
        return [api.Prop("name", "leaf", 2), api.Prop("detail", "deep")]


class Node(api.Bean):
    java_class = "x.Node"

    def props(self, ctx):
        return [api.Prop("name", "node", 2), api.Prop("kids", [Leaf(), Leaf(), Leaf()]),
                api.Prop("hidden", "h", -1), api.Prop("inline", Leaf(), inline=True)]


def test_depth_and_tree_pruning():
    def export(tree=None, depth=None):
        return api.export(Node(), api.pruner_for(tree, depth), None)

    assert export() == {"_class": "x.Node", "name": "node", "kids": [{"_class": "x.Leaf", "name": "leaf"}] * 3,
                        "inline": {"_class": "x.Leaf", "name": "leaf", "detail": "deep"}}
    assert export(depth="1")["kids"][0] == {"_class": "x.Leaf", "name": "leaf", "detail": "deep"}
    assert "hidden" in export(depth="2") and "hidden" not in export(depth="1")
    assert export(tree="kids") == {"_class": "x.Node", "kids": [{"_class": "x.Leaf"}] * 3}
    assert export(tree="kids[detail]{1,2}") == {"_class": "x.Node", "kids": [{"_class": "x.Leaf", "detail": "deep"}]}
    assert export(tree="name,hidden") == {"_class": "x.Node", "name": "node", "hidden": "h"}
    for bad in ("kids[", "kids]", ",", "kids{1", "kids{a}", "a[b]c"):
        with pytest.raises(api.BadQuery):
            api.parse_tree(bad)
    with pytest.raises(api.BadQuery):
        api.pruner_for(None, "x")


LIST_VIEW = ("<hudson.model.ListView><name>ignored</name><description>mine</description><jobNames>"
             "<comparator class='hudson.util.CaseInsensitiveComparator'/><string>a</string></jobNames>"
             "<columns/><recurse>false</recurse></hudson.model.ListView>")


def test_views_through_python_jenkins(standin):
    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN, timeout=10)
    server.create_job("a", job_xml())
    server.create_job("b", job_xml())
    assert [v["name"] for v in server.get_views()] == ["all"]
    server.create_view("mine", LIST_VIEW)
    assert server.view_exists("mine") and not server.view_exists("Mine")
    config = server.get_view_config("mine")
    assert config.startswith('<?xml version="1.1" encoding="UTF-8"?>') and "<name>mine</name>" in config
    assert [j["name"] for j in server.get_jobs(view_name="mine")] == ["a"]
    server.reconfig_view("mine", LIST_VIEW.replace("<string>a</string>", "<string>b</string>"))
    assert "<name>mine</name>" in server.get_view_config("mine")  # the name cannot change this way
    assert [j["name"] for j in server.get_jobs(view_name="mine")] == ["b"]
    with pytest.raises(jenkins.JenkinsException):
        server.create_view("mine", LIST_VIEW)
    server.delete_view("mine")
    assert not server.view_exists("mine")
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    assert c.post("view/all/doDelete").status_code == 500  # the last view stays
    assert c.post("createView?name=bad", data="<nope/>", headers={"Content-Type": "text/xml"}).status_code == 500
    r = c.post("createView?name=x", data={"a": "b"})
    assert r.status_code == 400 and r.headers["X-Error"] == "No view type is specified"
    standin.restart()
    assert [v["name"] for v in server.get_views()] == ["all"]
    server.create_view("kept", LIST_VIEW)
    standin.restart()
    assert server.view_exists("kept")  # views live in the home's config.xml


def test_running_builds_on_the_built_in_node(standin):
    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_TOKEN, timeout=10)
    server.create_job("long", job_xml("sleep 30"))
    assert server.get_nodes() == [{"name": "Built-In Node", "offline": False}]
    server.build_job("long")
    running = wait_until(server.get_running_builds)
    assert [(b["name"], b["number"]) for b in running] == [("long", 1)]
    server.stop_build("long", 1)
    wait_until(lambda: not server.get_running_builds())
    assert server.get_build_info("long", 1)["result"] == "ABORTED"


def test_deleting_a_job_aborts_its_build_and_leaves_nothing_behind(standin):
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    c.post("createItem?name=gone", data=job_xml("sleep 30"), headers={"Content-Type": "text/xml"})
    qid = int(c.post("job/gone/build").headers["Location"].rstrip("/").rsplit("/", 1)[1])
    wait_until(lambda: c.get(f"queue/item/{qid}/api/json").json().get("executable"))
    run = standin.model.find_job("gone").runs[1]
    assert c.post("job/gone/doDelete").status_code == 302
    wait_until(lambda: not run.in_progress, what="the aborted build to end")
    assert run.result == "ABORTED"
    assert not (standin.home / "jobs" / "gone").exists()
    c.post("createItem?name=gone", data=job_xml("true"), headers={"Content-Type": "text/xml"})
    assert c.get("job/gone/api/json").json()["builds"] == []
    assert requests.get(standin.url + "job/gone/1/api/json", auth=(ADMIN_USER, ADMIN_TOKEN), timeout=5).status_code == 404


def test_config_xml_post_keeps_the_old_config_on_errors_and_honours_the_charset(standin_client):
    c = standin_client
    c.post("createItem?name=j", data=job_xml("echo old"), headers={"Content-Type": "text/xml"})
    before = c.get("job/j/config.xml").text
    r = c.post("job/j/config.xml", data=b"<project><broken>", headers={"Content-Type": "text/xml"})
    assert r.status_code == 500 and c.get("job/j/config.xml").text == before
    folder = "<com.cloudbees.hudson.plugins.folder.Folder/>"
    assert c.post("job/j/config.xml", data=folder, headers={"Content-Type": "text/xml"}).status_code == 500
    assert c.get("job/j/config.xml").text == before
    assert c.post("job/nope/config.xml", data=job_xml(), headers={"Content-Type": "text/xml"}).status_code == 404
    # config.xml POST is read with the Content-Type's charset (ISO-8859-1 when none is given)...
    latin = "<project><description>caf\u00e9</description></project>".encode("latin-1")
    assert c.post("job/j/config.xml", data=latin, headers={"Content-Type": "application/xml"}).ok
    assert "<description>caf\u00e9</description>" in c.get("job/j/config.xml").content.decode("utf-8")
    utf8 = "<project><description>na\u00efve</description></project>".encode()
    assert c.post("job/j/config.xml", data=utf8, headers={"Content-Type": "text/xml; charset=UTF-8"}).ok
    assert "na\u00efve" in c.get("job/j/config.xml").content.decode("utf-8")
    # ...while createItem reads the raw bytes as the XML declaration says.
    declared = "<?xml version='1.0' encoding='ISO-8859-1'?><project><description>\u00e9t\u00e9</description></project>"
    assert c.post("createItem?name=k", data=declared.encode("latin-1"), headers={"Content-Type": "text/xml"}).ok
    assert "\u00e9t\u00e9" in c.get("job/k/config.xml").content.decode("utf-8")


def test_root_api_login_crumb_xml_and_http_delete(standin_factory):
    standin = standin_factory()
    anonymous = requests.get(standin.url + "login", timeout=5)
    assert anonymous.status_code == 200 and anonymous.headers["X-Jenkins"] == VERSION  # always readable
    assert "Set-Cookie" in anonymous.headers
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    root = c.get("api/json").json()
    assert root["_class"] == "hudson.model.Hudson" and root["mode"] == "NORMAL" and root["url"] is None
    assert root["useCrumbs"] is True and root["useSecurity"] is True and root["numExecutors"] == 2
    assert root["primaryView"] == {"_class": "hudson.model.AllView", "name": "all", "url": standin.url}
    r = c.get("crumbIssuer/api/xml", params={"xpath": 'concat(//crumbRequestField,":",//crumb)'})
    field, crumb = r.text.split(":")
    assert field == "Jenkins-Crumb" and len(crumb) == 64
    c.post("createItem?name=d", data=job_xml(), headers={"Content-Type": "text/xml"})
    assert c.request("DELETE", "job/d/").status_code == 204
    assert c.get("job/d/api/json").status_code == 404


def test_csrf_disabled_means_no_crumb_issuer_and_no_checks(standin_factory):
    standin = standin_factory(csrf=False)
    c = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    assert c.get("crumbIssuer/api/json").status_code == 404
    assert c.get("api/json").json()["useCrumbs"] is False
    assert c.post("createItem?name=x", data=job_xml(), headers={"Content-Type": "text/xml"}).status_code == 200
    server = jenkins.Jenkins(standin.url, ADMIN_USER, ADMIN_PASSWORD, timeout=10)
    server.create_job("y", job_xml())  # python-jenkins then stops sending crumbs
    assert server.crumb is False


def test_build_trigger_check_order(standin_client):
    c = standin_client
    c.post("createItem?name=p", data=job_xml(params=[("A", "1")]), headers={"Content-Type": "text/xml"})
    c.post("createItem?name=q", data=job_xml(), headers={"Content-Type": "text/xml"})
    assert c.get("job/p/build").status_code == 200  # a GET shows the parameters form
    assert c.get("job/q/build").status_code == 405
    c.post("job/p/disable")
    c.post("job/q/disable")
    assert c.get("job/p/build").status_code == 409  # not buildable comes first for /build
    assert c.post("job/q/buildWithParameters").status_code == 409  # before "not parameterized"


def test_sessions_are_bounded_least_recently_used_first(monkeypatch):
    from dindjobs.standin import security

    monkeypatch.setattr(security, "MAX_SESSIONS", 2)
    sessions = security.Sessions("salt")
    a, b = sessions.create(), sessions.create()
    assert sessions.valid(a)  # a is now the most recently used
    c = sessions.create()
    assert sessions.valid(a) and sessions.valid(c) and not sessions.valid(b)
    crumb = sessions.crumb("u", "127.0.0.1", a)
    assert sessions.crumb_ok(crumb, "u", "127.0.0.1", a)
    assert not sessions.crumb_ok(crumb, "u", "127.0.0.1", c) and not sessions.crumb_ok(crumb, "v", "127.0.0.1", a)


def test_configured_root_url_is_for_json_while_redirects_follow_the_request(standin_factory):
    standin = standin_factory(root_url="https://jenkins.example.invalid/")
    c = Client(standin.url, (ADMIN_USER, ADMIN_TOKEN))
    c.post("createItem?name=j", data=job_xml(), headers={"Content-Type": "text/xml"})
    assert c.get("api/json").json()["url"] == "https://jenkins.example.invalid/"
    assert c.get("job/j/api/json").json()["url"] == "https://jenkins.example.invalid/job/j/"
    assert c.post("job/j/build").headers["Location"].startswith(standin.url + "queue/item/")
    assert c.get("job/j").headers["Location"] == standin.url + "job/j/"
    assert c.get("job/j/api/json").json()["description"] == ""  # present but empty: "", absent: null
