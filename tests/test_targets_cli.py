"""Targets outside sync: the combined exit code, `wait` and `verify` against several stand-ins."""

from __future__ import annotations

import json
import re

import pytest

from dindjobs.commands import verify as verify_command
from dindjobs.errors import ExitCode
from dindjobs.targets import combined_exit
from dindjobs.verify.nesting import Nesting
from support.cli import run_cli as run
from support.fakewrapper import IMAGE, NESTED, FakeWrapper
from support.net import free_port
from support.standin_fixtures import ADMIN_TOKEN, Client, job_xml
from support.targets import three_targets

EVIDENCE = (f'echo "DINDJOBS-EVIDENCE daemon-id={NESTED}"; '
            f'echo "DINDJOBS-EVIDENCE image-id={IMAGE}"; echo "DINDJOBS-EVIDENCE tag=t:1"')


@pytest.mark.parametrize(("codes", "expected"), [
    ([0, 0, 0], ExitCode.OK),
    ([0, 2, 0], ExitCode.CHANGES_PENDING),
    ([2, None, 0], ExitCode.PARTIAL_FAILURE),
    ([0, 3, 2], ExitCode.PARTIAL_FAILURE),
    ([0, 1], ExitCode.PARTIAL_FAILURE),
    ([None, None], ExitCode.ERROR),
])
def test_combined_exit(codes, expected):
    assert combined_exit(codes) == expected


@pytest.fixture
def three(standin_factory, clean_env, tmp_path):
    return three_targets(standin_factory, tmp_path)


def test_wait_for_every_target_names_the_one_that_is_down(three, capsys):
    ini, servers = three
    code, out, err = run(capsys, "--conf", str(ini), "wait", "--all-targets", "--timeout", "5")
    assert code == 0, err
    for name, standin in servers.items():
        assert re.search(rf"^{name}: ready: {re.escape(standin.url)} ", out, re.M), out

    ini.write_text(ini.read_text() + f"\n[gone]\nurl=http://127.0.0.1:{free_port()}/\nuser=admin\n")
    code, out, _ = run(capsys, "--conf", str(ini), "wait", "--target", "staging", "--target", "gone",
                       "--timeout", "0.5", "--json")
    data = json.loads(out)
    assert code == 3 and data["exit_code"] == 3
    assert data["targets"]["staging"]["url"] == servers["staging"].url
    assert "error" in data["targets"]["gone"]


def test_verify_each_target_against_its_own_wrapper(three, capsys, monkeypatch):
    ini, servers = three
    ini.write_text(ini.read_text().replace("[prod]\n", "[prod]\nname = wrapper-prod\n"))
    for standin in servers.values():
        client = Client(standin.url, auth=("admin", ADMIN_TOKEN))
        client.fetch_crumb()
        assert client.post("createItem?name=build", data=job_xml(EVIDENCE).encode(),
                           headers={"Content-Type": "text/xml"}).status_code == 200
    asked = []

    def nesting(name):
        asked.append(name)
        return Nesting(FakeWrapper(name))
    monkeypatch.setattr(verify_command, "open_nesting", nesting)

    code, out, err = run(capsys, "--conf", str(ini), "verify", "--target", "staging", "--target", "prod",
                         "--jobs", "build", "--delay", "0")
    assert code == 0, out + err
    assert sorted(asked) == ["staging", "wrapper-prod"]  # each target's own wrapper
    rows = [line for line in out.splitlines() if "build" in line and "#1" in line]
    assert len(rows) == 2 and {row.split("│")[1].strip() for row in rows} == {"staging", "prod"}
    assert re.search(r"^staging: 1/1 jobs built and proved nested", out, re.M), out
    assert re.search(r"^prod: 1/1 jobs built and proved nested", out, re.M), out
    assert "verify: staging: build" in err and "verify: prod: build" in err
