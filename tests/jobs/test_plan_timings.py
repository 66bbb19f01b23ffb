"""What a plan's --timings say: ``compare`` is the classifying the reads did not hide, and
``classify_cpu`` the planning thread's CPU for all of it (on a clock driven by the test)."""

from __future__ import annotations

import threading
import types

from dindjobs.jenkins.client import Listing, LiveItem
from dindjobs.jobs import plan as plan_module
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.plan import Snapshot, make_plan
from dindjobs.jobs.render import Rendered, RenderedItem

XML = '<?xml version="1.0" encoding="utf-8"?>\n<project>\n  <description>{}</description>\n</project>\n'


class Clock:
    """Wall and thread-CPU time that move only when the test says so."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 0.0

    def module(self) -> types.SimpleNamespace:
        return types.SimpleNamespace(monotonic=lambda: self.wall, thread_time=lambda: self.cpu)


class SlowLastConfig:
    """A Jenkins of three jobs whose last config is answered only once the others are classified."""

    url = "http://jenkins.test/"
    identity = "id"

    def __init__(self, names: list[str], release: threading.Event) -> None:
        self.names = names
        self.release = release

    def list_items(self) -> Listing:
        listing = Listing()
        for name in self.names:
            listing.jobs[name] = LiveItem("job", name, "hudson.model.FreeStyleProject")
        return listing

    def get_job_config(self, name: str) -> str:
        if name == self.names[-1]:
            assert self.release.wait(10), "the other items were never classified"
        return XML.format(name)


def test_compare_is_the_tail_after_the_last_answer_and_classify_cpu_the_cpu(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(plan_module, "time", clock.module())
    names = ["a", "b", "c"]
    release = threading.Event()
    classified: list[str] = []
    real_classify = plan_module.classify

    def classify(item, *args, **kwargs):
        # Each classification takes 1 s of wall time (waiting for the interpreter lock, say) and
        # 10 ms of this thread's CPU; after the first two, the last config arrives.
        clock.wall += 1.0
        clock.cpu += 0.01
        classified.append(item.name)
        if len(classified) == 2:
            release.set()
        return real_classify(item, *args, **kwargs)

    monkeypatch.setattr(plan_module, "classify", classify)
    rendered = Rendered(jobs=[RenderedItem(kind="job", name=n, xml_text=XML.format(n), root_tag="project") for n in names])
    client = SlowLastConfig(names, release)
    snapshot = Snapshot(client, lambda url, identity: Ledger.memory(url, identity), workers=4)
    try:
        make_plan(rendered, client, ledger_for=snapshot.ledger_for, snapshot=snapshot)
    finally:
        snapshot.close()
    assert classified == names
    timings = snapshot.timings
    # The last config was answered at 102 (after two classifications), the plan ended at 103.
    assert timings["compare"] == 1.0
    assert abs(timings["classify_cpu"] - 0.03) < 1e-9
    assert timings["reads"] == 2.0 and timings["read_requests"] == 4  # the listing and three configs
