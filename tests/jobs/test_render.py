"""render.py: JJB YAML to XML through JJB's library API; errors as file:line:col.

Fixtures are data (JJB style): ``fixtures/X.yaml`` with ``X.xml`` (what ``dindjobs test``
prints) or ``X.error`` (the one-line message, ``---``, then the details printed above it: the
context chain and the offending line). Adding a case means adding two files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dindjobs.errors import RenderError
from dindjobs.jobs.render import check_name, render
from support.cli import run_cli as run

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(p.stem for p in FIXTURES.glob("*.yaml"))


def test_every_fixture_has_an_expectation():
    assert CASES, "no fixtures found"
    for case in CASES:
        has_xml = (FIXTURES / f"{case}.xml").exists()
        has_error = (FIXTURES / f"{case}.error").exists()
        assert has_xml != has_error, f"{case}: needs exactly one of .xml or .error"


@pytest.mark.parametrize("case", CASES)
def test_fixture(case, monkeypatch):
    monkeypatch.chdir(FIXTURES)  # messages show paths relative to the working directory
    expected_xml = FIXTURES / f"{case}.xml"
    if expected_xml.exists():
        assert render([f"{case}.yaml"]).as_text() == expected_xml.read_text()
        return
    headline, _, report = (FIXTURES / f"{case}.error").read_text().partition("\n---\n")
    with pytest.raises(RenderError) as info:
        render([f"{case}.yaml"])
    assert info.value.message == headline
    assert info.value.message.startswith(f"{case}.yaml:")
    assert list(info.value.details) == report.rstrip("\n").split("\n")


def test_directory_is_walked_recursively_with_excludes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "deep").mkdir()
    (tmp_path / "skipme").mkdir()
    (tmp_path / "top.yaml").write_text("- job:\n    name: top\n")
    (tmp_path / "a" / "deep" / "inner.yml").write_text("- job:\n    name: inner\n")
    (tmp_path / "skipme" / "x.yaml").write_text("- job:\n    name: skipped\n")
    (tmp_path / "a" / "notes.txt").write_text("not yaml")
    names = [i.name for i in render([tmp_path], excludes=["skipme"]).jobs]
    assert names == ["inner", "top"]
    assert [i.name for i in render([tmp_path], recursive=False).jobs] == ["top"]


def test_ambient_jjb_config_is_ignored(tmp_path, monkeypatch):
    home = tmp_path / "home"
    ini = home / ".config" / "jenkins_jobs" / "jenkins_jobs.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[job_builder]\nallow_duplicates=True\n")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(RenderError, match="Duplicate job"):
        render([FIXTURES / "duplicate-job.yaml"])


def test_explicit_conf_job_builder_options_apply(tmp_path):
    conf = tmp_path / "jenkins_jobs.ini"
    conf.write_text("[jenkins]\nurl=http://example.invalid/\nuser=u\npassword=hunter2-secret\n"
                    "[job_builder]\nkeep_descriptions=True\n")
    yaml_file = tmp_path / "j.yaml"
    yaml_file.write_text("- job:\n    name: plain\n")
    marked = render([yaml_file]).jobs[0].xml
    kept = render([yaml_file], conf_path=conf).jobs[0].xml
    assert "Managed by Jenkins Job Builder" in marked
    assert "Managed by Jenkins Job Builder" not in kept


def test_rendered_items_know_folders_depth_and_source(monkeypatch):
    monkeypatch.chdir(FIXTURES)
    rendered = render(["folder.yaml"])
    folder, job = rendered.jobs
    assert (folder.name, folder.is_folder, folder.depth, folder.parent) == ("team", True, 0, None)
    assert (job.name, job.is_folder, job.depth, job.parent) == ("team/deploy", False, 1, "team")
    assert job.source == "folder.yaml:7:11"  # the `name:` value


def test_missing_path_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="no such file"):
        render([tmp_path / "nope.yaml"])


@pytest.mark.parametrize(
    "name, problem",
    [
        ("ok-name_1 (x)", None),
        ("a/b/c", None),
        ("naïve", None),
        ("a?b", "'?' is an unsafe character"),
        ("a%b", "'%' is an unsafe character"),
        ("..", "'..' is not an allowed name"),
        ("a/./b", "'.' is not an allowed name"),
        ("dot.", "cannot end with '.'"),
        ("tab\there", "control character"),
        (" lead", "leading or trailing spaces"),
        ("", "empty"),
        ("a/", "empty"),
    ],
)
def test_check_name_follows_jenkins_rules(name, problem):
    found = check_name(name, "job")
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_view_names_cannot_hold_a_slash():
    assert check_name("a/b", "job") is None
    assert "'/' is an unsafe character" in check_name("a/b", "view")


def test_jenkins_jobs_cli_is_never_imported():
    code = ("import sys, dindjobs.jobs.render, dindjobs.commands.test; "
            "bad = [m for m in sys.modules if m.startswith('jenkins_jobs.cli')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# --- the `dindjobs test` command ----------------------------------------------------------------


def test_cli_test_prints_xml(capsys, clean_env, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    code, out, err = run(capsys, "test", "template-project.yaml")
    assert code == 0
    assert out == (FIXTURES / "template-project.xml").read_text()
    assert "rendered 2 jobs and 0 views" in err


def test_cli_test_writes_config_xml_tree(capsys, clean_env, tmp_path, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "test", "folder.yaml", "view.yaml", "-o", str(out_dir))
    assert code == 0 and out == ""
    files = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("config.xml"))
    assert files == ["jobs/nightly/config.xml", "jobs/team/config.xml", "jobs/team/deploy/config.xml",
                     "views/Nightly builds/config.xml"]
    assert "<command>./deploy.sh</command>" in (out_dir / "jobs/team/deploy/config.xml").read_text()


def test_cli_test_yaml_syntax_error_is_file_line_col_without_traceback(capsys, clean_env, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    code, out, err = run(capsys, "test", "syntax-error.yaml")
    assert code == 1 and out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1] == "dindjobs: error: syntax-error.yaml:4:20: mapping values are not allowed here"
    assert "      - shell: echo: this is not a mapping" in err  # the offending line is shown


def test_cli_test_template_error_keeps_jjb_context(capsys, clean_env, monkeypatch):
    monkeypatch.chdir(FIXTURES)
    code, _, err = run(capsys, "test", "missing-variable.yaml")
    assert code == 1
    assert "missing-variable.yaml:6:3: In project 'app'" in err
    assert err.strip().splitlines()[-1].startswith("dindjobs: error: missing-variable.yaml:4:17:")


def test_cli_test_uses_the_conf_rendering_options_and_never_asks_for_a_password(capsys, clean_env, tmp_path,
                                                                                monkeypatch):
    conf = tmp_path / "jenkins_jobs.ini"
    conf.write_text("[jenkins]\nuser=someone\n[job_builder]\nkeep_descriptions=True\n")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    monkeypatch.setattr("click.prompt", lambda *a, **k: pytest.fail("test must not prompt"))
    code, out, _ = run(capsys, "--conf", str(conf), "test", str(FIXTURES / "disabled.yaml"))
    assert code == 0 and "<disabled>true</disabled>" in out
    assert "Managed by Jenkins Job Builder" not in out  # keep_descriptions applied


def test_a_tree_without_yaml_is_an_error(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "README.md").write_text("no jobs here")
    with pytest.raises(RenderError, match=f"no JJB YAML found under {tmp_path}$"):
        render([tmp_path])


# --- includes, empty files, top level ----------------------------------------------------------


def _include_tree(tmp_path, path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "step.sh").write_text("echo from lib\n")
    (tmp_path / "jobs" / "a.yaml").write_text(
        f"- job:\n    name: a\n    builders:\n      - shell: !include-raw-verbatim: {path}\n")
    return tmp_path / "jobs"


@pytest.mark.parametrize("path", ["../lib/step.sh", "{tmp}/lib/step.sh"])
def test_includes_outside_the_tree_are_refused_unless_include_path_allows_them(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    jobs = _include_tree(tmp_path, path.replace("{tmp}", str(tmp_path)))
    with pytest.raises(RenderError, match=r"^jobs/a\.yaml:4:16: !include-raw-verbatim: .* is outside the job tree"):
        render([jobs])
    conf = tmp_path / "conf.ini"
    conf.write_text("[job_builder]\ninclude_path = lib\n")
    assert "echo from lib" in render([jobs], conf_path=conf).jobs[0].xml


def test_includes_inside_the_tree_need_no_include_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs = _include_tree(tmp_path, "scripts/x.sh")
    (jobs / "scripts").mkdir()
    (jobs / "scripts" / "x.sh").write_text("echo inside\n")
    assert "echo inside" in render([jobs]).jobs[0].xml
    assert "echo inside" in render([jobs / "a.yaml"]).jobs[0].xml  # a file's tree is its directory


def test_an_empty_file_is_named_in_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    (tmp_path / "job.yaml").write_text("- job:\n    name: a\n")
    with caplog.at_level("WARNING", logger="dindjobs"):
        assert [j.name for j in render([tmp_path]).jobs] == ["a"]
    assert [r.getMessage() for r in caplog.records] == ["empty.yaml: empty YAML file, nothing to load from it"]


@pytest.mark.parametrize("text, kind", [("just text\n", "string"), ("a: 1\n", "mapping"), ("# c\n\n42\n", "number")])
def test_the_top_level_must_be_a_list(tmp_path, monkeypatch, text, kind):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text(text)
    line = 3 if kind == "number" else 1
    with pytest.raises(RenderError, match=rf"^a\.yaml:{line}:1: the top level must be a list .*, not a {kind}$"):
        render(["a.yaml"])


def test_jinja2_includes_go_through_the_same_guard(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs" / "parts").mkdir(parents=True)
    (tmp_path / "jobs" / "parts" / "step.j2").write_text("echo {{ 'in' + 'side' }}\n")
    (tmp_path / "outside.txt").write_text("echo outside\n")
    (tmp_path / "jobs" / "a.yaml").write_text(
        "- job:\n    name: a\n    builders:\n      - shell: !j2: \"{% include 'parts/step.j2' %}\"\n")
    assert "echo inside" in render(["jobs"]).jobs[0].xml
    (tmp_path / "jobs" / "b.yaml").write_text(
        "- job:\n    name: b\n    builders:\n      - shell: !j2: \"{% include 'outside.txt' %}\"\n")
    with pytest.raises(RenderError, match=r"^jobs/b\.yaml:4:16: !j2: 'outside.txt' is outside the job tree"):
        render(["jobs"])
