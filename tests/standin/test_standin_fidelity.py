"""The stand-in agrees with the image: plugins from plugins.txt, security from casc/jenkins.yaml,
pipeline jobs stored (not run), and an identity header that says it is the stand-in."""

from __future__ import annotations

import textwrap

import pytest
import requests

from dindjobs.standin import casc, plugins
from dindjobs.standin.model import VERSION
from support.net import free_port
from support.standin_fixtures import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    IMAGE_CASC_FILE,
    IMAGE_PLUGIN_FILE,
    Client,
    job_xml,
    start_standin_process,
    wait_until,
)

PIPELINE_XML = """<?xml version='1.0' encoding='UTF-8'?>
<flow-definition plugin="workflow-job">
  <description>{description}</description>
  <keepDependencies>false</keepDependencies>
  <properties/>
  <definition class="org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition" plugin="workflow-cps">
    <script>pipeline {{ agent any; stages {{ stage('x') {{ steps {{ sh 'true' }} }} }} }}</script>
    <sandbox>true</sandbox>
  </definition>
  <triggers/>
</flow-definition>
"""
FOLDER_XML = "<com.cloudbees.hudson.plugins.folder.Folder><description/></com.cloudbees.hudson.plugins.folder.Folder>"
XML = {"Content-Type": "text/xml"}


def _admin(standin) -> Client:
    client = Client(standin.url, (ADMIN_USER, ADMIN_PASSWORD))
    client.fetch_crumb()
    return client


def test_plugin_list_is_what_plugins_txt_installs(standin):
    listed = plugins.parse_plugin_file(IMAGE_PLUGIN_FILE.read_text(encoding="utf-8"))
    data = _admin(standin).get("pluginManager/api/json?depth=1").json()
    assert sorted(p["shortName"] for p in data["plugins"]) == sorted(p.short_name for p in listed)
    assert {"cloudbees-folder", "configuration-as-code", "workflow-job", "git"} <= {p.short_name for p in listed}
    assert all(p["active"] and p["enabled"] for p in data["plugins"])


def test_disabled_and_broken_plugins(standin_factory, tmp_path):
    home = tmp_path / "home"
    plugins.write_plugin(home / "plugins", plugins.Requested("cloudbees-folder", "6.1"))
    (home / "plugins" / "cloudbees-folder.jpi.disabled").touch()
    (home / "plugins" / "broken.jpi").write_bytes(b"not a zip")
    standin = standin_factory(home=home, plugin_file=None)
    data = _admin(standin).get("pluginManager/api/json?depth=1").json()["plugins"]
    assert [(p["shortName"], p["version"], p["active"]) for p in data] == [("cloudbees-folder", "6.1", False)]
    # An inactive plugin's item types cannot load: a folder is refused.
    r = _admin(standin).post("createItem?name=f", data=FOLDER_XML, headers=XML)
    assert r.status_code == 500


@pytest.mark.parametrize(("line", "message"), [
    ("bad id!", "is not a plugin id"),
    ("git:1.0 beta:x", "is not an http"),  # whitespace is removed: "1.0beta" is fine, the URL "x" is not
    ("git:%%", "is not a version"),
    ("git\ngit:2", "listed twice"),
])
def test_plugin_file_syntax_errors(line, message):
    with pytest.raises(ValueError, match=message):
        plugins.parse_plugin_file(line, "p.txt")


def test_plugin_file_syntax_accepted():
    parsed = plugins.parse_plugin_file("# comment\n git:5.2.1 # pinned\nworkflow-job\nx::https://e.invalid/x.hpi\n"
                                       "y:incrementals;org.x;1.2-rc3\n")
    assert [(p.short_name, p.version, p.url) for p in parsed] == [
        ("git", "5.2.1", None), ("workflow-job", "latest", None), ("x", "latest", "https://e.invalid/x.hpi"),
        ("y", "incrementals;org.x;1.2-rc3", None)]


def test_plugin_cli_installs_into_the_directory(tmp_path, capsys):
    assert plugins.main(["--plugin-file", str(IMAGE_PLUGIN_FILE), "-d", str(tmp_path / "ref")]) == 0
    home = tmp_path
    (home / "plugins").symlink_to(tmp_path / "ref")
    assert set(plugins.installed(home)) == {p.short_name for p in plugins.parse_plugin_file(
        IMAGE_PLUGIN_FILE.read_text(encoding="utf-8"))}
    bad = tmp_path / "bad.txt"
    bad.write_text("ok\nnot/valid\n")
    assert plugins.main(["-f", str(bad), "-d", str(tmp_path / "x")]) == 1
    assert "bad.txt:2" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_pipeline_jobs_round_trip_in_folders(standin):
    c = _admin(standin)
    assert c.post("createItem?name=team", data=FOLDER_XML, headers=XML).status_code == 200
    assert c.post("job/team/createItem?name=pipe", data=PIPELINE_XML.format(description="one"),
                  headers=XML).status_code == 200
    stored = c.get("job/team/job/pipe/config.xml").text
    assert "<flow-definition" in stored and "<description>one</description>" in stored and "sh 'true'" in stored
    info = c.get("job/team/job/pipe/api/json").json()
    assert info["_class"] == "org.jenkinsci.plugins.workflow.job.WorkflowJob" and info["description"] == "one"
    assert c.post("job/team/job/pipe/config.xml", data=PIPELINE_XML.format(description="two"),
                  headers=XML).status_code == 200
    assert "<description>two</description>" in c.get("job/team/job/pipe/config.xml").text
    # A freestyle config cannot replace a pipeline's: another item type.
    assert c.post("job/team/job/pipe/config.xml", data=job_xml(), headers=XML).status_code == 500
    standin.restart()
    c = _admin(standin)
    assert "<description>two</description>" in c.get("job/team/job/pipe/config.xml").text
    assert c.post("job/team/job/pipe/doDelete").status_code == 302
    assert c.get("job/team/job/pipe/api/json").status_code == 404


def test_pipeline_build_ends_saying_it_needs_jenkins_war(standin):
    c = _admin(standin)
    c.post("createItem?name=pipe", data=PIPELINE_XML.format(description=""), headers=XML)
    assert c.post("job/pipe/build?delay=0sec").status_code == 201
    build = wait_until(lambda: (b := c.get("job/pipe/1/api/json")).status_code == 200
                       and not b.json()["inProgress"] and b.json(), what="the build")
    assert build["result"] == "NOT_BUILT" and build["_class"] == "org.jenkinsci.plugins.workflow.job.WorkflowRun"
    log = c.get("job/pipe/1/consoleText").text
    assert "running pipelines needs jenkins.war" in log and log.endswith("Finished: NOT_BUILT\n")


def test_root_type_without_its_plugin_is_refused_and_skipped_at_load(standin_factory, tmp_path):
    standin = standin_factory(home=tmp_path / "bare", plugin_file=None)
    c = _admin(standin)
    assert c.get("pluginManager/api/json?depth=1").json()["plugins"] == []
    r = c.post("createItem?name=pipe", data=PIPELINE_XML.format(description=""), headers=XML)
    assert r.status_code == 500
    assert c.post("createItem?name=f", data=FOLDER_XML, headers=XML).status_code == 500
    assert c.post("createItem?name=p", data=job_xml(), headers=XML).status_code == 200  # core's type
    assert not (tmp_path / "bare" / "jobs" / "pipe").exists()
    assert c.post("createItem?name=m", data={"mode": "org.jenkinsci.plugins.workflow.job.WorkflowJob"}).status_code == 400
    # A pipeline left on disk from a home that had the plugin: kept on disk, not loaded.
    (tmp_path / "bare" / "jobs" / "old").mkdir()
    (tmp_path / "bare" / "jobs" / "old" / "config.xml").write_text(PIPELINE_XML.format(description=""))
    standin.restart()
    c = _admin(standin)
    assert c.get("job/old/api/json").status_code == 404 and c.get("job/p/api/json").status_code == 200
    assert (tmp_path / "bare" / "jobs" / "old" / "config.xml").exists()


def test_unknown_nested_elements_are_kept(standin):
    c = _admin(standin)
    xml = job_xml("true").replace("<buildWrappers/>", "<buildWrappers><hudson.plugins.timestamper."
                                  "TimestamperBuildWrapper plugin=\"timestamper\"/></buildWrappers>")
    assert c.post("createItem?name=t", data=xml, headers=XML).status_code == 200
    assert "TimestamperBuildWrapper" in c.get("job/t/config.xml").text


def test_identity_header_on_every_answer(standin):
    r = requests.get(standin.url + "login", timeout=5)
    assert r.headers["X-Dindjobs-Standin"] == VERSION and r.headers["X-Jenkins"] == VERSION == "2.580.2"
    assert requests.get(standin.url + "api/json", timeout=5).headers["X-Dindjobs-Standin"] == VERSION


# --- configuration as code ---------------------------------------------------------------------

@pytest.fixture
def image_casc_env(tmp_path, monkeypatch):
    secret = tmp_path / "admin-password"
    secret.write_text("s3cret-from-file")
    monkeypatch.setenv("JENKINS_ADMIN_ID", "boss")
    monkeypatch.setenv("JENKINS_ADMIN_PASSWORD_FILE", str(secret))
    return secret


def test_image_casc_secures_the_standin(standin_factory, image_casc_env):
    standin = standin_factory(users=None, casc=IMAGE_CASC_FILE)
    anonymous = Client(standin.url)
    r = anonymous.get("api/json")
    assert r.status_code == 403 and anonymous.get("job/x/api/json").status_code in (403, 404)
    assert Client(standin.url, ("boss", "wrong")).get("api/json").status_code == 401
    admin = Client(standin.url, ("boss", "s3cret-from-file"))
    root = admin.get("api/json").json()
    assert root["description"].startswith("dindjobs wrapper:") and root["numExecutors"] == 2
    assert root["useCrumbs"] is True
    assert admin.get("whoAmI/api/json").json()["name"] == "boss"
    assert admin.post("createItem?name=x", data=job_xml(), headers=XML).status_code == 403  # no crumb
    admin.fetch_crumb()
    assert admin.post("createItem?name=x", data=job_xml(), headers=XML).status_code == 200


def test_casc_without_the_jcasc_plugin_fails_the_start(standin_factory, tmp_path, image_casc_env):
    home = tmp_path / "no-jcasc"
    plugins.write_plugin(home / "plugins", plugins.Requested("cloudbees-folder"))
    standin = standin_factory(home=home, users=None, casc=IMAGE_CASC_FILE, plugin_file=None)
    assert standin.phase == "FAILED" and "configuration-as-code plugin is not installed" in standin.failure
    assert requests.get(standin.url + "api/json", timeout=5).status_code == 500


def test_casc_anonymous_read_defaults_to_true_as_in_jenkins(standin_factory, tmp_path, monkeypatch):
    conf = tmp_path / "c.yaml"
    conf.write_text(textwrap.dedent("""\
        jenkins:
          securityRealm:
            local:
              users:
                - id: alice
                  password: "${ALICE_PW:-fallback}"
          authorizationStrategy: loggedInUsersCanDoAnything
        """))
    standin = standin_factory(users=None, casc=conf)
    assert Client(standin.url).get("api/json").status_code == 200
    assert Client(standin.url, ("alice", "fallback")).get("whoAmI/api/json").json()["name"] == "alice"


@pytest.mark.parametrize(("snippet", "message"), [
    ("  crumbIssuer:\n    standard:\n      excludeClientIPFromCrumb: false\n",
     "DefaultCrumbIssuer : excludeClientIPFromCrumb"),
    ("  numExecutor: 2\n", "jenkins.model.Jenkins : numExecutor"),
    ("  authorizationStrategy:\n    unsecured: {}\n", "AuthorizationStrategy : unsecured"),
])
def test_casc_refuses_unknown_attributes_and_fails_the_boot(standin_factory, tmp_path, snippet, message):
    conf = tmp_path / "c.yaml"
    conf.write_text("jenkins:\n  securityRealm:\n    local:\n      users:\n        - id: a\n          password: p\n"
                    + snippet)
    with pytest.raises(casc.CascError, match=message):
        casc.load(conf, env={})
    standin = standin_factory(users=None, casc=conf, start=False)
    standin.start(wait=True)
    r = requests.get(standin.url + "api/json", timeout=5)
    assert r.status_code == 500 and standin.phase == "FAILED"


def test_casc_variables():
    env = {"A": "x", "SECRETS": "/nonexistent"}
    assert casc.resolve("${A}-${B:-dflt}-^${A}-${B}", env) == "x-dflt-${A}-"
    assert casc.resolve("${trim:${C:-  y  }}", env) == "y"
    assert casc.resolve("${base64:ab}/${decodeBase64:YWI=}", env) == "YWI=/ab"
    with pytest.raises(casc.CascError, match="unterminated"):
        casc.resolve("${A", env)


def test_casc_reads_secrets_and_files(tmp_path):
    (tmp_path / "TOKEN").write_text("  from-secret-dir \n")
    pw = tmp_path / "pw"
    pw.write_text("line\n")
    env = {"SECRETS": str(tmp_path), "PWFILE": str(pw)}
    assert casc.resolve("${TOKEN}|${readFile:${PWFILE}}", env) == "from-secret-dir|line\n"
    with pytest.raises(casc.CascError, match="cannot read"):
        casc.resolve("${readFile:/nonexistent/file}", env)


def test_yaml_subset():
    doc = casc.parse_yaml(textwrap.dedent("""\
        # comment
        a: 1
        b: "two # not a comment"   # a comment
        c:
          - x
          - 'it''s'
          - k: v
            l: []
        d: {}
        e:
        - 3
        f: true
        """))
    assert doc == {"a": 1, "b": "two # not a comment", "c": ["x", "it's", {"k": "v", "l": []}], "d": {}, "e": [3],
                   "f": True}
    for bad, message in (("a: &x 1", "not supported"), ("a: |\n  x", "not supported"), ("a: 1\na: 2", "duplicate"),
                         ("a:\n  b: 1\n c: 2", "indentation"), ("a: [1, 2]", "not supported")):
        with pytest.raises(casc.CascError, match=message):
            casc.parse_yaml(bad)


def test_casc_directory_and_conflicts(tmp_path):
    d = tmp_path / "casc"
    d.mkdir()
    (d / "a.yaml").write_text("jenkins:\n  systemMessage: hi\n")
    (d / "b.yml").write_text("jenkins:\n  numExecutors: 3\n")
    (d / ".hidden.yaml").write_text("jenkins:\n  bogus: 1\n")
    config = casc.load(d, env={})
    assert (config.system_message, config.executors) == ("hi", 3)
    (d / "c.yaml").write_text("jenkins:\n  numExecutors: 4\n")
    with pytest.raises(casc.CascError, match="more than one file"):
        casc.load(d, env={})


def test_command_line_takes_casc_and_plugin_file(tmp_path, image_casc_env):
    port = free_port()
    proc = start_standin_process(tmp_path / "home", port, "--casc", str(IMAGE_CASC_FILE),
                                 "--plugin-file", str(IMAGE_PLUGIN_FILE))
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: _answers(url + "login"), timeout=20, what="the stand-in")
        assert requests.get(url + "api/json", timeout=5).status_code == 403
        plugins = requests.get(url + "pluginManager/api/json?tree=plugins[shortName]", timeout=5,
                               auth=("boss", "s3cret-from-file")).json()["plugins"]
        assert len(plugins) == len(plugins_listed()) and (tmp_path / "home" / "plugins" / "git.jpi").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def plugins_listed() -> list[plugins.Requested]:
    return plugins.parse_plugin_file(IMAGE_PLUGIN_FILE.read_text(encoding="utf-8"))
