"""verify's report: evidence parsing, failure diagnosis, and when a run is ok."""

from __future__ import annotations

from dindjobs.verify.nesting import Nesting
from dindjobs.verify.report import Evidence, JobReport, VerifyReport, diagnose, parse_evidence
from support.fakewrapper import HOST, IMAGE, NESTED, FakeWrapper


def test_evidence_comes_only_from_marked_lines_not_from_shell_traces():
    log = (
        "+ docker info --format {{.ID}}\n"
        f"+ echo 'DINDJOBS-EVIDENCE daemon-id={HOST}'\n"
        f"DINDJOBS-EVIDENCE daemon-id={NESTED}\r\n"
        f"DINDJOBS-EVIDENCE image-id={IMAGE}\n"
        "  DINDJOBS-EVIDENCE tag=hello:latest  \n"
        "Finished: SUCCESS\n"
    )
    evidence = parse_evidence(log)
    assert (evidence.daemon_id, evidence.image_id, evidence.tag) == (NESTED, IMAGE, "hello:latest")
    assert evidence.conflicts == []


def test_evidence_ignores_hidden_annotations_and_empty_values_and_flags_conflicts():
    note = "\x1b[8mha:////4abc=\x1b[0m"
    log = (f"{note}DINDJOBS-EVIDENCE daemon-id={NESTED}\n"
           "DINDJOBS-EVIDENCE image-id=\n"
           f"DINDJOBS-EVIDENCE daemon-id={HOST}\n"
           "DINDJOBS-EVIDENCE colour=blue\n")
    evidence = parse_evidence(log)
    assert evidence.daemon_id == HOST
    assert evidence.image_id is None
    assert evidence.conflicts == [f"daemon-id printed as {NESTED} and as {HOST}"]


def test_no_evidence_in_an_unrelated_log():
    assert parse_evidence("hello\nDINDJOBS-EVIDENCE\nFinished: SUCCESS\n") == Evidence()


def test_diagnose_names_a_daemon_that_is_not_the_nested_one():
    tail = ["+ docker build -t x .",
            "Cannot connect to the Docker daemon at tcp://127.0.0.1:2375. Is the docker daemon running?",
            "Build step 'Execute shell' marked build as failure", "Finished: FAILURE"]
    reason = diagnose("FAILURE", tail)
    assert reason.startswith("build FAILURE: the job could not reach a Docker daemon at tcp://127.0.0.1:2375")
    assert "DOCKER_HOST" in reason


def test_diagnose_quotes_the_last_error_line_of_a_broken_dockerfile():
    tail = ["Step 2/3 : RUN exit 3", " ---> Running in 0123",
            "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
            "+ echo done", "Finished: FAILURE"]
    assert diagnose("FAILURE", tail) == "build FAILURE: The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert diagnose("ABORTED", ["Finished: ABORTED"]) == "build ABORTED"


def test_report_is_ok_only_when_every_job_succeeded_and_every_proof_held():
    good = JobReport("a", build=1, result="SUCCESS", seconds=2.0, started=1000.0,
                     checks=Nesting(FakeWrapper()).prove(Evidence(NESTED, IMAGE)))
    bad = JobReport("b", build=3, result="FAILURE", seconds=1.0, started=1001.5, reason="build FAILURE",
                    log="x\nboom\n")
    assert VerifyReport([good], seconds=3.0).ok
    report = VerifyReport([good, bad], seconds=3.5)
    assert not report.ok and int(report.exit_code) == 1
    assert report.overhead == 1.0  # builds covered 1000.0..1002.5 of the 3.5 s
    data = report.to_json()
    assert [j["ok"] for j in data["jobs"]] == [True, False]
    assert data["jobs"][1]["console_tail"] == ["x", "boom"]
    assert not VerifyReport([]).ok
