"""verify's queue and build following, against the in-process Jenkins stand-in (real HTTP)."""

from __future__ import annotations

import json
import threading

import pytest

from dindjobs.config import Secret, Settings
from dindjobs.jenkins.client import Jenkins
from dindjobs.verify.nesting import Nesting
from dindjobs.verify.report import PASS
from dindjobs.verify.run import Timeouts, select_jobs, verify
from support.fakewrapper import IMAGE, NESTED, FakeWrapper
from support.standin_fixtures import ADMIN_TOKEN, ADMIN_USER, job_xml, wait_until

EVIDENCE = (f'echo "DINDJOBS-EVIDENCE daemon-id={NESTED}"; '
            f'echo "DINDJOBS-EVIDENCE image-id={IMAGE}"; echo "DINDJOBS-EVIDENCE tag=t:1"')


@pytest.fixture
def client(standin):
    jenkins = Jenkins(Settings(url=standin.url, user=ADMIN_USER, token=Secret(ADMIN_TOKEN, "test"), timeout=10))
    yield jenkins
    jenkins.close()


def create(standin_client, name, xml):
    r = standin_client.post(f"createItem?name={name}", data=xml.encode(), headers={"Content-Type": "text/xml"})
    assert r.status_code == 200, r.text


class Lines:
    def __init__(self):
        self.lines, self.states = [], []
        self.lock = threading.Lock()

    def line(self, job, text):
        with self.lock:
            self.lines.append((job, text))

    def state(self, job, text):
        with self.lock:
            self.states.append((job, text))


def run(client, jobs, sink=None, wrapper=None, **kw):
    sink = sink or Lines()
    kw.setdefault("interval", 0.02)
    return verify(client, jobs, Nesting(wrapper or FakeWrapper()), on_line=sink.line, on_state=sink.state, **kw)


def test_parameterized_jobs_run_with_their_defaults_and_prove_nesting(client, standin_client):
    create(standin_client, "param", job_xml('echo "name=$IMAGE_NAME text=$TEXT"', EVIDENCE,
                                            params=[("IMAGE_NAME", "hello"), ("TEXT", "a b+c")]))
    create(standin_client, "plain", job_xml("echo plain", EVIDENCE))
    sink = Lines()
    report = run(client, ["param", "plain"], sink)
    assert report.ok, [j.to_json() for j in report.jobs]
    param, plain = report.jobs
    assert (param.build, param.result, plain.build, plain.result) == (1, "SUCCESS", 1, "SUCCESS")
    assert all(c.status == PASS for c in param.checks) and len(param.checks) == 5
    assert ("param", "name=hello text=a b+c") in sink.lines  # defaults survived the query string
    assert ("plain", "plain") in sink.lines
    assert param.log.rstrip().endswith("Finished: SUCCESS")  # read after inProgress:false
    assert param.evidence.tag == "t:1"


def test_a_failing_build_reports_its_result_and_console_tail(client, standin_client):
    create(standin_client, "broken", job_xml("echo before", "echo 'Error: the Dockerfile is broken' >&2; exit 3"))
    report = run(client, ["broken"])
    job = report.jobs[0]
    assert not report.ok
    assert job.result == "FAILURE"
    assert job.reason == "build FAILURE: Error: the Dockerfile is broken"
    assert job.checks == [] and job.proof_text() == "not checked (build failed)"
    assert "Error: the Dockerfile is broken" in job.console_tail
    assert job.console_tail[-1] == "Finished: FAILURE"


def test_no_trigger_on_a_job_never_built_says_so(client, standin, standin_client):
    create(standin_client, "fresh", job_xml(EVIDENCE))
    seen = len(standin.requests)
    report = run(client, ["fresh"], trigger=False)
    assert not [r for r in standin.requests[seen:] if r.method == "POST"]  # nothing was triggered
    job = report.jobs[0]
    assert job.build is None and not report.ok
    assert "never built" in job.reason


def test_no_trigger_checks_the_last_build_without_triggering(client, standin, standin_client):
    create(standin_client, "built", job_xml(EVIDENCE))
    assert run(client, ["built"]).ok
    seen = len(standin.requests)
    report = run(client, ["built"], trigger=False)
    assert report.ok and report.jobs[0].build == 1
    assert not [r for r in standin.requests[seen:] if r.method == "POST"]


def test_a_cancelled_queue_item_is_reported(client, standin, standin_client):
    create(standin_client, "slowq", job_xml("echo never").replace(
        "<keepDependencies>", "<quietPeriod>30</quietPeriod><keepDependencies>"))
    done = {}
    thread = threading.Thread(target=lambda: done.setdefault("r", run(client, ["slowq"])))
    thread.start()
    item = wait_until(lambda: standin.model.queue.items and next(iter(standin.model.queue.items)), what="queued")
    assert standin_client.post(f"queue/cancelItem?id={item}", headers={"Referer": standin.url}).status_code < 400
    thread.join(10)
    job = done["r"].jobs[0]
    assert job.result == "CANCELLED" and "cancelled" in job.reason and job.build is None


def test_queue_timeout_names_why_the_item_waits(client, standin_client):
    create(standin_client, "waiting", job_xml("echo x").replace(
        "<keepDependencies>", "<quietPeriod>30</quietPeriod><keepDependencies>"))
    sink = Lines()
    report = run(client, ["waiting"], sink, timeouts=Timeouts(queue=0.3))
    job = report.jobs[0]
    assert "still in the queue after 0.3 s" in job.reason and "quiet period" in job.reason
    assert job.build is None and not report.ok
    assert any(text.startswith("WaitingItem: In the quiet period") for _, text in sink.states)


def test_a_blocked_item_is_followed_until_its_own_build_runs(client, standin_client):
    create(standin_client, "serial", job_xml("sleep 0.3", EVIDENCE))
    first = client.trigger("serial")
    wait_until(lambda: client.queue_item(first).get("executable"), what="first build started")
    sink = Lines()
    report = run(client, ["serial"], sink)
    assert report.ok and report.jobs[0].build == 2
    assert any(text.startswith("BlockedItem") for _, text in sink.states), sink.states


def test_joining_an_already_queued_item_is_noted(client, standin_client):
    create(standin_client, "coalesce", job_xml(EVIDENCE).replace(
        "<keepDependencies>", "<quietPeriod>1</quietPeriod><keepDependencies>"))
    queued = client.trigger("coalesce")
    report = run(client, ["coalesce"])
    job = report.jobs[0]
    assert job.queue_id == queued and job.build == 1 and report.ok
    assert job.notes == [f"joined queue item {queued}, already waiting before the trigger"]


def test_an_expired_queue_item_is_found_by_queue_id(client, standin, standin_client):
    create(standin_client, "expire", job_xml("sleep 0.3", EVIDENCE))
    standin.model.queue.left_ttl = 0.0  # forget left items at once (Jenkins: 5 minutes)
    report = run(client, ["expire"])
    job = report.jobs[0]
    assert report.ok, job.to_json()
    assert any("expired" in note for note in job.notes), job.notes


def test_select_jobs_from_yaml_and_from_the_server(client, standin_client, tmp_path):
    yaml = tmp_path / "jobs.yaml"
    yaml.write_text("- job: {name: top, builders: [{shell: 'true'}]}\n"
                    "- job: {name: f, project-type: folder}\n"
                    "- job: {name: f/inner, builders: [{shell: 'true'}]}\n")
    assert select_jobs(client, [str(yaml)]) == ["f/inner", "top"]
    assert select_jobs(client, [str(yaml)], "f/*") == ["f/inner"]
    create(standin_client, "live-one", job_xml("true"))
    assert select_jobs(client, (), "live-*") == ["live-one"]
    with pytest.raises(Exception, match="no build jobs"):
        select_jobs(client, (), "nothing-*")


def cli(capsys, *argv):
    from dindjobs import cli as cli_module

    with pytest.raises(SystemExit) as exc:
        cli_module.main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_cli_streams_consoles_prints_a_report_and_never_passes_unmade_checks(capsys, standin_env, standin_client):
    create(standin_client, "one", job_xml("echo first-line", f"echo leaked {ADMIN_TOKEN}", EVIDENCE))
    create(standin_client, "two", job_xml("echo second-line", EVIDENCE))
    code, out, err = cli(capsys, "verify", "--jobs", "*", "--name", "dindjobs-verify-nowrapper-7f3a")
    assert code == 1  # no wrapper of that name: the nesting checks are skipped, so nothing is proved
    assert "[one] first-line" in err and "[two] second-line" in err
    assert "nesting checks will be skipped" in err
    assert "skipped" in out and "2 with skipped checks" in out
    assert ADMIN_TOKEN not in out + err and "[one] leaked ***" in err
    code, out, _ = cli(capsys, "verify", "--jobs", "one", "--json", "--no-trigger", "--quiet",
                       "--name", "dindjobs-verify-nowrapper-7f3a")
    data = json.loads(out)
    assert code == 1 and [j["build"] for j in data["jobs"]] == [1]
    assert "leaked ***" in data["jobs"][0]["console_tail"] and ADMIN_TOKEN not in out
    assert {c["status"] for c in data["jobs"][0]["checks"]} == {"pass", "skip"}


def test_delay_zero_skips_the_jobs_quiet_period(client, standin_client):
    create(standin_client, "patient", job_xml(EVIDENCE, params=[("P", "v")]).replace(
        "<keepDependencies>", "<quietPeriod>600</quietPeriod><keepDependencies>"))
    report = run(client, ["patient"], delay=0, timeouts=Timeouts(queue=20))
    assert report.ok and report.jobs[0].build == 1
