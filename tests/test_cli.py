"""The CLI edge: help, exit codes, one-line errors, no secrets in --debug output."""

from __future__ import annotations

import click
import pytest

from dindjobs import cli
from dindjobs.errors import ExitCode, JenkinsAuthError, PartialFailure, RenderError
from support.cli import run_cli as run

SECRET = "tok-9f8e7d6c5b4a"




def test_help_lists_commands(capsys, clean_env):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "Commands:" in out and "config" in out and "Exit codes" in out


def test_version(capsys, clean_env):
    from dindjobs import __version__

    code, out, _ = run(capsys, "--version")
    assert code == 0 and __version__ in out


@pytest.mark.parametrize("argv, message", [
    (["no-such-command"], "No such command 'no-such-command'"),
    (["sync", "--no-such-option", "."], "No such option '--no-such-option'"),
    (["sync", "--workers", "0", "."], "Invalid value for '--workers'"),
    (["sync", "/no/such/path"], "Path '/no/such/path' does not exist"),
])
def test_usage_errors_exit_1_with_one_line(capsys, clean_env, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 1  # 2 would read as "changes pending" to scripts
    assert err.count("\n") == 1 and err.startswith("dindjobs: error: ") and message in err


def test_config_shows_where_the_url_came_from(capsys, clean_env):
    code, out, _ = run(capsys, "--url", "http://ci.example:8080", "config", "--json")
    assert code == 0 and '"url_source": "flag --url"' in out


@pytest.fixture
def failing_command(monkeypatch):
    """Register a throwaway command that raises the error a test hands it."""
    box = {}

    @click.command("boom")
    def boom():
        raise box["error"]

    cli.group.add_command(boom)
    yield box
    cli.group.commands.pop("boom", None)


@pytest.mark.parametrize(
    "error, expected",
    [
        (RenderError("jobs.yaml:3:5: mapping values are not allowed here"), ExitCode.ERROR),
        (JenkinsAuthError("401 bad credentials for admin", status=401), ExitCode.ERROR),
        (PartialFailure("2 of 10 items failed"), ExitCode.PARTIAL_FAILURE),
    ],
)
def test_errors_become_one_line_and_exit_code(capsys, clean_env, failing_command, error, expected):
    failing_command["error"] = error
    code, out, err = run(capsys, "boom")
    assert code == int(expected)
    assert err.strip().splitlines() == [f"dindjobs: error: {error.message}"]
    assert "Traceback" not in err and out == ""


def test_debug_shows_traceback_without_secret(capsys, clean_env, monkeypatch, failing_command):
    monkeypatch.setenv("DINDJOBS_USER", "admin")
    monkeypatch.setenv("DINDJOBS_TOKEN", SECRET)

    @click.command("leaky")
    @click.pass_obj
    def leaky(app):
        import logging

        settings = app.settings
        logging.getLogger("dindjobs.test").debug("connecting with %s", settings.token.reveal())
        raise JenkinsAuthError(f"rejected {settings.token.reveal()}", status=401)

    cli.group.add_command(leaky)
    try:
        code, out, err = run(capsys, "--debug", "leaky")
    finally:
        cli.group.commands.pop("leaky")
    assert code == 1
    assert "Traceback" in err
    assert SECRET not in err and SECRET not in out
    assert "***" in err


def test_unexpected_exception_has_no_traceback_without_debug(capsys, clean_env, failing_command):
    failing_command["error"] = ValueError("kaboom")
    code, _, err = run(capsys, "boom")
    assert code == 1 and "Traceback" not in err and "kaboom" in err and "--debug" in err


def test_config_json_never_prints_secret(capsys, clean_env, monkeypatch):
    import json

    monkeypatch.setenv("DINDJOBS_USER", "admin")
    monkeypatch.setenv("DINDJOBS_TOKEN", SECRET)
    code, out, err = run(capsys, "--debug", "config", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["token"] == "env DINDJOBS_TOKEN" and data["user"] == "admin"
    assert SECRET not in out + err


@pytest.mark.parametrize("name", cli.COMMAND_MODULES)
def test_every_registered_command_loads_and_explains_itself(capsys, clean_env, name):
    code, out, _ = run(capsys, name, "--help")
    assert code == 0
    assert f"Usage: dindjobs {name}" in out and "Options:" in out


def test_version_does_not_import_heavy_libraries(clean_env):
    import subprocess
    import sys

    probe = "import sys; from dindjobs import cli; print(sorted(m for m in ('docker', 'jenkins_jobs', 'jenkins') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_details_are_printed_once_above_the_error(capsys, clean_env, failing_command):
    failing_command["error"] = RenderError("a.yaml:4:7: Missing parameter: 'x'",
                                           details=("a.yaml:1:3: In project 'p'", "    - shell: {x}", "      ^"))
    code, _, err = run(capsys, "boom")
    assert code == 1
    assert err.splitlines() == ["a.yaml:1:3: In project 'p'", "    - shell: {x}", "      ^",
                                "dindjobs: error: a.yaml:4:7: Missing parameter: 'x'"]


@pytest.mark.parametrize("args", [["--conf", "{ini}", "config", "--json"], ["config", "--conf", "{ini}", "--json"],
                                  ["config", "--conf={ini}", "--json"]])
def test_conf_is_accepted_before_and_after_the_command(capsys, clean_env, tmp_path, args):
    ini = tmp_path / "x.ini"
    ini.write_text("[jenkins]\nurl = http://from-ini.example/\n")
    code, out, err = run(capsys, *(a.replace("{ini}", str(ini)) for a in args))
    assert code == 0, err
    assert '"url": "http://from-ini.example/"' in out
