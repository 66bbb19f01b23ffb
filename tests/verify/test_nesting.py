"""The five nesting proofs, against a wrapper answering from fixed facts."""

from __future__ import annotations

from dindjobs.verify.nesting import Nesting
from dindjobs.verify.report import FAIL, PASS, SKIP, Evidence, JobReport
from support.fakewrapper import HOST, IMAGE, NESTED, FakeWrapper


def statuses(checks):
    return {c.name: c.status for c in checks}


def test_every_proof_holds_for_a_build_in_the_nested_daemon():
    checks = Nesting(FakeWrapper()).prove(Evidence(NESTED, IMAGE, "hello:latest"))
    assert statuses(checks) == {"evidence": PASS, "nested daemon": PASS, "not host daemon": PASS,
                                "image in nested": PASS, "image not on host": PASS}


def test_a_build_on_the_host_daemon_fails_the_proofs():
    wrapper = FakeWrapper(nested_images=(), host_images=(IMAGE,))
    checks = Nesting(wrapper).prove(Evidence(HOST, IMAGE))
    assert statuses(checks) == {"evidence": PASS, "nested daemon": FAIL, "not host daemon": FAIL,
                                "image in nested": FAIL, "image not on host": FAIL}
    assert any("HOST daemon" in c.detail for c in checks)


def test_unreachable_host_daemon_skips_its_checks_and_never_passes_them():
    checks = Nesting(FakeWrapper(host_down=True)).prove(Evidence(NESTED, IMAGE))
    assert statuses(checks) == {"evidence": PASS, "nested daemon": PASS, "not host daemon": SKIP,
                                "image in nested": PASS, "image not on host": SKIP}
    report = JobReport("j", build=1, result="SUCCESS", checks=checks)
    assert not report.ok
    assert report.proof_text() == "3/5 held; skipped: not host daemon, image not on host"


def test_no_wrapper_at_all_skips_every_wrapper_check_but_missing_evidence_still_fails():
    nesting = Nesting(None, "no Docker engine answers")
    assert statuses(nesting.prove(Evidence(NESTED, IMAGE))) == {
        "evidence": PASS, "nested daemon": SKIP, "not host daemon": SKIP,
        "image in nested": SKIP, "image not on host": SKIP}
    assert statuses(nesting.prove(Evidence())) == {
        "evidence": FAIL, "nested daemon": FAIL, "not host daemon": FAIL,
        "image in nested": FAIL, "image not on host": FAIL}
