"""Plugin-aware sync: the server's plugins are read before the first write."""

from __future__ import annotations

from pathlib import Path

import pytest

from dindjobs.jobs.plugins import ITEM_TYPE_PLUGINS, check_items
from dindjobs.jobs.render import render
from dindjobs.standin.plugins import Requested, parse_plugin_file, write_plugin
from support.cli import run_cli as run
from support.standin_fixtures import ADMIN_TOKEN, ADMIN_USER, IMAGE_PLUGIN_FILE

REPO = Path(__file__).resolve().parents[2]

PIPELINE = """
- job:
    name: images
    project-type: folder
- job:
    name: images/x
    project-type: pipeline
    dsl: |
      pipeline {{ agent any; stages {{ stage('b') {{ steps {{ sh 'true' }} }} }} }}
- job:
    name: plain
    builders:
      - shell: 'true'
"""

TIMESTAMPS = """
- wrapper:
    name: stamped
    wrappers:
      - timestamps
- job:
    name: stamped-job
    wrappers:
      - stamped
    builders:
      - shell: 'true'
"""


def _yaml(tmp_path, text) -> Path:
    d = tmp_path / "yaml"
    d.mkdir(exist_ok=True)
    (d / "jobs.yaml").write_text(text)
    return d


def _env(monkeypatch, standin) -> None:
    monkeypatch.setenv("DINDJOBS_URL", standin.url)
    monkeypatch.setenv("DINDJOBS_USER", ADMIN_USER)
    monkeypatch.setenv("DINDJOBS_TOKEN", ADMIN_TOKEN)


def _image_plugins() -> set[str]:
    return {p.short_name for p in parse_plugin_file(IMAGE_PLUGIN_FILE.read_text(encoding="utf-8"))}


def test_every_plugin_the_example_jobs_need_is_in_plugins_txt():
    rendered = render([REPO / "jjb"])
    report = check_items(rendered.items, _image_plugins(), "http://image/")
    assert report.errors == [] and report.warnings == []
    # ...and that says something: the examples use a plugin-provided item type (the folder)...
    assert any(item.plugins for item in rendered.items)
    # ...and without the image's list they would be refused.
    assert check_items(rendered.items, set(), "http://bare/").errors


def test_the_pipeline_example_needs_only_plugins_the_image_has():
    rendered = render([REPO / "jjb"])
    pipelines = [i for i in rendered.jobs if i.root_tag == "flow-definition"]
    assert pipelines, "jjb/ has a pipeline example"
    assert ITEM_TYPE_PLUGINS["flow-definition"][0] in _image_plugins()


def test_pipeline_on_a_server_without_workflow_plugins_is_an_error_with_zero_writes(
        standin_factory, tmp_path, clean_env, monkeypatch, capsys):
    home = tmp_path / "home"
    write_plugin(home / "plugins", Requested("cloudbees-folder"))  # folders, but no pipelines
    standin = standin_factory(home=home, plugin_file=None)
    _env(monkeypatch, standin)
    d = _yaml(tmp_path, PIPELINE)
    for args in (["sync", "--plan"], ["sync"]):
        code, out, err = run(capsys, *args, str(d))
        assert code == 1
        assert (f"job images/x: pipeline jobs need the workflow-job plugin, which {standin.url} does not have"
                in err), err
    assert standin.writes() == []
    assert any(r.path == "/pluginManager/api/json" for r in standin.requests)


def test_missing_component_plugin_is_a_warning_and_sync_goes_on(standin, tmp_path, clean_env, monkeypatch,
                                                                  capsys):
    _env(monkeypatch, standin)
    code, out, err = run(capsys, "sync", str(_yaml(tmp_path, TIMESTAMPS)))
    assert code == 0, err
    assert (f"job stamped-job: wrapper 'timestamps' needs the timestamper plugin, which {standin.url} "
            "does not have: Jenkins will keep the element but ignore it") in err
    assert "TimestamperBuildWrapper" in standin.model.find("stamped-job").config  # kept, as Jenkins does


def test_plugin_list_not_readable_is_said_once_and_sync_goes_on(standin, tmp_path, clean_env, monkeypatch,
                                                                 capsys):
    standin.restrict(ADMIN_USER, ["Overall/Read", "Job/Read", "Job/Create", "Job/Configure", "Job/ExtendedRead",
                                  "View/Read", "View/Create", "View/Configure"])
    _env(monkeypatch, standin)
    code, out, err = run(capsys, "sync", str(_yaml(tmp_path, TIMESTAMPS)))
    assert code == 0, err
    assert err.count("plugin check skipped: cannot read the plugin list") == 1
    assert "403" in err and standin.model.find("stamped-job") is not None


@pytest.mark.parametrize(("root", "installed", "expected"), [
    ("flow-definition", {"workflow-aggregator"}, "pipeline jobs need the workflow-job plugin"),
    ("com.cloudbees.hudson.plugins.folder.Folder", set(), "folders need the cloudbees-folder plugin"),
])
def test_item_type_table_wins_over_umbrella_plugins(root, installed, expected, tmp_path):
    rendered = render([_yaml(tmp_path, PIPELINE)])
    item = next(i for i in rendered.jobs if i.root_tag == root)
    report = check_items([item], installed, "http://x/")
    assert len(report.errors) == 1 and expected in report.errors[0]


def test_one_warning_per_missing_component_naming_its_jobs(tmp_path):
    text = TIMESTAMPS + "".join(f"- job:\n    name: more-{n}\n    wrappers:\n      - timestamps\n" for n in range(4))
    report = check_items(render([_yaml(tmp_path, text)]).items, _image_plugins(), "http://x/")
    assert report.errors == [] and len(report.warnings) == 1
    assert report.warnings[0].startswith("job more-0, job more-1, job more-2 and 2 more: wrapper 'timestamps' "
                                         "needs the timestamper plugin, which http://x/ does not have")


def test_a_cached_rendering_still_warns_about_a_missing_plugin(standin, tmp_path, clean_env, monkeypatch, capsys):
    _env(monkeypatch, standin)
    d = _yaml(tmp_path, TIMESTAMPS)
    warning = f"job stamped-job: wrapper 'timestamps' needs the timestamper plugin, which {standin.url} does not have"
    for cached in ("false", "true"):
        code, out, err = run(capsys, "sync", "--plan", "--timings", str(d))
        assert code == 2, err
        assert f'"render_cached": {cached}' in err and warning in err, err
