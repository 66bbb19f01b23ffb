"""Each target in a forked child: events, questions, errors and deaths, with real processes."""

from __future__ import annotations

import gc
import logging
import os
import pickle
import signal
import threading

import pytest

from dindjobs.config import Settings
from dindjobs.errors import DindjobsError, Interrupted, JenkinsAPIError, JenkinsAuthError
from dindjobs.jobs.lock import LockTimeout
from dindjobs.jobs.target_procs import pack_error, run_each_forked, unpack_error
from dindjobs.targets import Target

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def targets(*names: str) -> list[Target]:
    return [Target(name, Settings(url=f"http://{name}.example/")) for name in names]


def test_events_come_in_order_and_questions_are_answered_here():
    parent = os.getpid()
    seen: list[tuple] = []

    def work(target, relay):
        for i in range(200):
            relay.send("step", i)
        answer = relay.ask("question", target.name)
        relay.send("answered", answer)
        return os.getpid(), answer

    def on_event(target, event):
        seen.append((target.name, *event))
        if event[0] == "question":
            assert os.getpid() == parent
            return f"yes, {event[1]}"
        return None

    each = run_each_forked(targets("a", "b", "c"), work, on_event, threading.Event())
    assert [e.target.name for e in each] == ["a", "b", "c"]
    pids = {e.value[0] for e in each}
    assert len(pids) == 3 and parent not in pids
    for name in "abc":
        mine = [event[1:] for event in seen if event[0] == name]
        assert mine == [*[("step", i) for i in range(200)], ("question", name), ("answered", f"yes, {name}")]
        assert next(e for e in each if e.target.name == name).value[1] == f"yes, {name}"


def test_children_keep_what_was_alive_at_the_fork_out_of_the_collector_and_the_parent_does_not():
    inherited = [object() for _ in range(1000)]  # stands for the rendered items
    frozen_before = gc.get_freeze_count()

    def work(target, relay):
        return gc.get_freeze_count(), len(inherited)

    each = run_each_forked(targets("a", "b"), work, lambda target, event: None, threading.Event())
    assert all(e.value[0] > frozen_before + len(inherited) and e.value[1] == len(inherited) for e in each)
    assert gc.get_freeze_count() == frozen_before


def test_an_error_raised_by_the_answer_is_raised_in_the_child():
    def work(target, relay):
        try:
            relay.ask("confirm")
        except DindjobsError as exc:
            return f"child saw: {exc.one_line()}"
        return "no error"

    def on_event(target, event):
        raise DindjobsError("2 item(s) would be removed (--prune)", hint="confirm with --yes")

    [each] = run_each_forked(targets("a"), work, on_event, threading.Event())
    assert each.value == "child saw: 2 item(s) would be removed (--prune) (confirm with --yes)"


def test_errors_keep_their_type_and_message_and_deaths_are_that_targets_failure():
    def work(target, relay):
        if target.name == "auth":
            raise JenkinsAuthError("credentials refused by http://auth.example/", status=401, hint="check the token")
        if target.name == "lock":
            raise LockTimeout("another sync is running")
        if target.name == "exits":
            os._exit(7)
        if target.name == "killed":
            os.kill(os.getpid(), signal.SIGKILL)
        if target.name == "crash":
            raise ValueError("boom")
        return "applied"

    each = {e.target.name: e for e in run_each_forked(targets("auth", "lock", "exits", "killed", "crash", "ok"),
                                                         work, lambda *_: None, threading.Event())}
    assert each["ok"].value == "applied" and each["ok"].error is None
    auth = each["auth"].error
    assert type(auth) is JenkinsAuthError and auth.status == 401
    assert auth.one_line() == "credentials refused by http://auth.example/ (check the token)"
    assert type(each["lock"].error) is LockTimeout and each["lock"].error.one_line() == "another sync is running"
    assert each["exits"].error.one_line() == ("its sync process ended before reporting (exit status 7); what it "
                                              "applied is in its ledger (run sync again to finish)")
    assert "(killed by SIGKILL)" in each["killed"].error.one_line()
    assert each["crash"].error.one_line() == "its sync stopped unexpectedly: ValueError: boom"
    assert all(e.value is None for name, e in each.items() if name != "ok")


def test_stop_here_stops_every_child_through_its_own_stop_event():
    stop = threading.Event()
    started: set[str] = set()

    def work(target, relay):
        relay.send("started")
        return "stopped" if relay.stop.wait(60) else "not stopped"

    def on_event(target, event):
        started.add(target.name)
        if len(started) == 2:
            stop.set()

    each = run_each_forked(targets("a", "b"), work, on_event, stop)
    assert [e.value for e in each] == ["stopped", "stopped"]


def test_a_childs_log_records_are_handled_here(caplog):
    def work(target, relay):
        logging.getLogger("dindjobs.jobs.sync").warning("plugin %s is missing on %s", "timestamper", target.name)
        return None

    with caplog.at_level(logging.WARNING):
        run_each_forked(targets("a"), work, lambda *_: None, threading.Event())
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("dindjobs.jobs.sync", "plugin timestamper is missing on a")]


@pytest.mark.parametrize("error", [
    Interrupted("SIGTERM: stopped", signal.SIGTERM),
    JenkinsAPIError("HTTP 500 from Jenkins", status=500),
    DindjobsError("bad", hint="do this", details=("line 1", "line 2")),
])
def test_an_error_is_made_again_from_its_state(error):
    again = unpack_error(pickle.loads(pickle.dumps(pack_error(error))))
    assert type(again) is type(error)
    assert again.one_line() == error.one_line() and again.details == error.details
    assert again.exit_code == error.exit_code and getattr(again, "status", None) == getattr(error, "status", None)
