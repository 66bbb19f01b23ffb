"""The item model: a new kind is one `register` call, and plan, apply and the ledger handle it.

The example kind, "dashboard", is a top-level list view stored under a ``dash-`` prefix whose
names compare case-insensitively (unlike views): different key rules, its own listing lookup
and its own read/create/update/delete through the real client, against the stand-in.
"""

from __future__ import annotations

import pytest

from dindjobs.config import Secret, Settings
from dindjobs.jenkins.client import Jenkins, LiveItem
from dindjobs.jobs.apply import apply_plan
from dindjobs.jobs.items import JOB, KINDS, VIEW, Kind, item_key, kind_of, register, unregister
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.plan import Action, make_plan
from dindjobs.jobs.render import Rendered, RenderedItem
from support.standin_fixtures import ADMIN_TOKEN, ADMIN_USER

DASHBOARD_XML = """<?xml version='1.0' encoding='UTF-8'?>
<hudson.model.ListView>
  <name>{name}</name>
  <description>{description}</description>
  <filterExecutors>false</filterExecutors>
  <filterQueue>false</filterQueue>
  <jobNames/>
  <jobFilters/>
  <columns/>
  <recurse>false</recurse>
</hudson.model.ListView>
"""


def _dashboard_find(listing, name: str) -> LiveItem | None:
    for view_name, view in listing.views.items():
        if view_name.lower() == f"dash-{name}".lower():
            return LiveItem("dashboard", view_name[len("dash-"):], view.cls)
    return None


DASHBOARD = Kind(
    "dashboard", case_insensitive=True, nested=False, rank=2, has_disabled=False,
    find=_dashboard_find,
    read=lambda client, name: client.get_view_config(f"dash-{name}"),
    create=lambda client, name, xml: client.create_view(f"dash-{name}", xml),
    update=lambda client, name, xml: client.update_view(f"dash-{name}", xml),
    delete=lambda client, name: client.delete_view(f"dash-{name}"),
)


@pytest.fixture
def dashboard_kind():
    register(DASHBOARD)
    yield DASHBOARD
    unregister("dashboard")


def dashboard(name: str, description: str) -> RenderedItem:
    # <name> is what Jenkins stores: the same for every spelling of one item
    return RenderedItem("dashboard", name, DASHBOARD_XML.format(name="dash-Ops", description=description),
                        "hudson.model.ListView")


def test_builtin_kinds_hold_the_name_rules():
    assert item_key("job", "Team/Api") == item_key("job", "team/api")
    assert item_key("view", "Team") != item_key("view", "team")
    assert (JOB.depth("a/b/c"), VIEW.depth("a/b")) == (2, 0)
    assert set(KINDS) >= {"job", "view"}
    with pytest.raises(ValueError, match="unknown item kind 'nope'"):
        kind_of("nope")


def test_a_new_kind_is_planned_applied_owned_and_pruned(dashboard_kind, standin, tmp_path):
    client = Jenkins(Settings(url=standin.url, user=ADMIN_USER, token=Secret(ADMIN_TOKEN, "test"), timeout=10))

    def ledger_for(url, identity):
        return Ledger.open(tmp_path, url, identity)

    def sync(items, prune=None):
        plan, ledger = make_plan(Rendered(views=items), client, ledger_for=ledger_for, prune=prune)
        result = apply_plan(plan, client, ledger)
        ledger.save()
        return plan, result

    try:
        plan, result = sync([dashboard("Ops", "first")])
        assert [(c.kind, c.name, c.action) for c in plan.changes] == [("dashboard", "Ops", Action.CREATE)]
        assert not result.failed
        assert "dash-Ops" in client.list_items().views

        plan, _ = sync([dashboard("OPS", "first")])  # the kind's own key rule: same item
        assert [c.action for c in plan.changes] == [Action.UNCHANGED]

        plan, result = sync([dashboard("Ops", "second")])
        assert [c.action for c in plan.changes] == [Action.UPDATE] and not result.failed
        assert "second" in client.get_view_config("dash-Ops")

        assert [(k, n) for k, n, _ in Ledger.open(tmp_path, client.url, client.identity).items()] == [
            ("dashboard", "Ops")]
        plan, result = sync([], prune="delete")
        assert [(c.name, c.action) for c in plan.changes] == [("Ops", Action.DELETE)] and not result.failed
        assert "dash-Ops" not in client.list_items().views
        assert len(Ledger.open(tmp_path, client.url, client.identity)) == 0
    finally:
        client.close()
