"""Compare what the YAML wants with what Jenkins has, item by item.

The plan is made from the server on every run: one tree listing, then the configs it needs,
fetched in parallel. Both sides are canonicalised (:mod:`dindjobs.jobs.canonical`), so Jenkins' reformatting
is never a change, and the ownership ledger (:mod:`dindjobs.jobs.ledger`) tells "Jenkins stored our
push in its own format" apart from "someone changed it in Jenkins" (drift).

Classification (:func:`classify`, :func:`classify_prune`) is pure: it takes data and returns a
:class:`Change`, so it is unit-tested without a server.
"""

from __future__ import annotations

import difflib
import enum
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from dindjobs.errors import JenkinsAPIError, JenkinsNotFoundError, RenderError
from dindjobs.jenkins.client import Jenkins, Listing, LiveItem
from dindjobs.jobs.canonical import canonical, digest, fingerprint, is_marked, parse, top_level_text, with_disabled
from dindjobs.jobs.items import item_key, kind_of
from dindjobs.jobs.ledger import Ledger
from dindjobs.jobs.render import Rendered, RenderedItem

#: Default prune guard: refuse more deletes than this many items...
PRUNE_MAX_ITEMS = 10
#: ...or than this share of the owned items, unless --force.
PRUNE_MAX_SHARE = 0.25


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    DRIFTED = "drifted"  # changed in Jenkins since our last push: will be restored
    DELETE = "delete"
    DISABLE = "disable"
    CONFLICT = "conflict"  # exists in Jenkins but is not ours: left alone


WRITES = (Action.CREATE, Action.UPDATE, Action.DRIFTED)
REMOVALS = (Action.DELETE, Action.DISABLE)
PENDING = (*WRITES, *REMOVALS, Action.CONFLICT)


@dataclass
class Change:
    """What sync will do (or refuses to do) to one item, and why."""

    kind: str  # a registered kind (dindjobs.jobs.items)
    name: str
    action: Action
    reason: str = ""
    is_folder: bool = False
    push_xml: str | None = None  # the XML apply sends (update/drifted; see xml_to_push)
    manages_disabled: bool = True  # False: the YAML leaves `disabled` to the server
    desired_hash: str | None = None
    rendered_signature: str | None = None  # the YAML's rendering, for the ledger's fingerprint after a push
    record: dict | None = None  # ledger record to write if the run applies without a push
    before: str = ""  # canonical text in Jenkins (for the diff)
    after: str = ""  # canonical text from the YAML (for the diff)
    # A create keeps only its rendered item: its XML and canonical text are made again when
    # pushed or shown, so a cold plan of 5 000 items does not hold 5 000 documents twice.
    item: RenderedItem | None = field(default=None, repr=False, compare=False)

    def xml_to_push(self) -> str | None:
        """The XML apply sends (made from the rendered item for a create)."""
        if self.push_xml is None and self.item is not None and self.action in WRITES:
            return self.item.make_xml()
        return self.push_xml

    def after_text(self) -> str:
        """The canonical text from the YAML (made from the rendered item for a create)."""
        if self.after or self.item is None or self.action not in WRITES:
            return self.after
        drop = () if self.manages_disabled or not kind_of(self.kind).has_disabled else ("disabled",)
        return canonical(self.item.signature, drop)

    @property
    def depth(self) -> int:
        return kind_of(self.kind).depth(self.name)

    @property
    def label(self) -> str:
        return f"{'folder' if self.is_folder else self.kind} {self.name}"

    def diff(self) -> str:
        """A unified diff from Jenkins to YAML ("" when there is nothing to show)."""
        after_text = self.after_text()
        if self.action not in (*WRITES, Action.DELETE) or self.before == after_text:
            return ""
        before = self.before.splitlines() if self.before else []
        after = [] if self.action is Action.DELETE else after_text.splitlines()
        lines = difflib.unified_diff(before, after, fromfile=f"jenkins/{self.kind}/{self.name}",
                                     tofile=f"yaml/{self.kind}/{self.name}", lineterm="")
        return "\n".join(lines)

    def to_json(self, with_diff: bool = True) -> dict:
        data = {"kind": self.kind, "name": self.name, "action": self.action.value, "reason": self.reason,
                "folder": self.is_folder}
        if with_diff:
            data["diff"] = self.diff()
        return data


@dataclass
class Plan:
    """Every classified item, in apply order (parents first), plus what it was made against."""

    changes: list[Change] = field(default_factory=list)
    url: str = ""
    identity: str | None = None
    prune: str | None = None
    owned: int = 0  # items the ledger says are ours and that exist in Jenkins
    stale: list[tuple[str, str]] = field(default_factory=list)  # ledger entries gone from Jenkins

    def counts(self) -> dict[str, int]:
        counts = {action.value: 0 for action in Action}
        for change in self.changes:
            counts[change.action.value] += 1
        return counts

    @property
    def pending(self) -> bool:
        """True when Jenkins is not in sync with the YAML."""
        return any(change.action in PENDING for change in self.changes)

    @property
    def removals(self) -> list[Change]:
        return [c for c in self.changes if c.action in REMOVALS]

    def summary_line(self) -> str:
        counts = self.counts()
        parts = [f"{counts[a.value]} to {a.value}" for a in (Action.CREATE, Action.UPDATE, Action.DELETE, Action.DISABLE)
                 if counts[a.value]]
        if counts["drifted"]:
            parts.append(f"{counts['drifted']} drifted (to restore)")
        if counts["conflict"]:
            parts.append(f"{counts['conflict']} in conflict (left alone)")
        parts.append(f"{counts['unchanged']} unchanged")
        return "Plan: " + ", ".join(parts) + "."

    def prune_limit(self) -> int:
        """How many removals are allowed without --force (never less than one)."""
        return max(1, min(PRUNE_MAX_ITEMS, int(self.owned * PRUNE_MAX_SHARE)))

    def to_json(self, with_diff: bool = True) -> dict:
        return {"url": self.url, "prune": self.prune, "summary": self.counts(), "in_sync": not self.pending,
                "items": [c.to_json(with_diff) for c in self.changes]}


# --- classification (pure) -----------------------------------------------------------------


def classify(item: RenderedItem, live: LiveItem | None, live_xml: str | None, record: dict | None,
             *, adopt: bool = False) -> Change:
    """Decide what to do with one item the YAML defines."""
    if (record is not None and live is not None and live_xml is not None and live.is_folder == item.is_folder
            and record.get("fingerprint") == fingerprint(item.signature, live_xml)):
        # Same bytes on both sides as when the last sync found them in sync: no parsing needed.
        return Change(item.kind, item.name, Action.UNCHANGED, "identical to the last sync", is_folder=item.is_folder,
                      manages_disabled=bool(record.get("manages_disabled")), desired_hash=record.get("desired"))
    has_disabled = kind_of(item.kind).has_disabled
    # The compact signature has JJB's tree without its pretty-printing, which costs three times
    # as much as this parse and is only needed for an item that is pushed or shown.
    rendered = parse(item.signature)
    manages_disabled = has_disabled and top_level_text(rendered, "disabled") is not None
    drop = () if manages_disabled or not has_disabled else ("disabled",)
    after = canonical(rendered, drop)
    change = Change(item.kind, item.name, Action.UNCHANGED, is_folder=item.is_folder,
                    manages_disabled=manages_disabled, desired_hash=digest(after), after=after)
    if live is None or live_xml is None:
        change.action, change.reason, change.item = Action.CREATE, "not in Jenkins", item
        change.rendered_signature, change.after = item.signature, ""
        return change
    if live.is_folder != item.is_folder:
        change.action = Action.CONFLICT
        change.reason = f"exists in Jenkins as a {'folder' if live.is_folder else 'job'} ({live.cls}); delete it first"
        return change
    before = canonical(live_xml, drop)
    change.before = before
    stored_hash = digest(before)
    record_now = {"desired": change.desired_hash, "stored": stored_hash, "manages_disabled": manages_disabled,
                  "fingerprint": fingerprint(item.signature, live_xml)}
    comparable = record is not None and record.get("manages_disabled") == manages_disabled
    if before == after:
        change.reason = "identical"
        owned = record is not None or is_marked(live_xml)
        if owned and any((record or {}).get(key) != value for key, value in record_now.items()):
            change.record = record_now  # written to the ledger if this run applies (no request needed)
        return change
    if comparable and record.get("stored") == stored_hash:
        if record.get("desired") == change.desired_hash:
            change.reason = "as pushed (Jenkins stores it in its own format)"
            if record.get("fingerprint") != record_now["fingerprint"]:
                change.record = record_now
            return change
        change.action, change.reason = Action.UPDATE, "changed in the YAML"
    elif record is not None and comparable:
        change.action, change.reason = Action.DRIFTED, "changed in Jenkins since the last sync"
    elif record is not None:
        change.action, change.reason = Action.UPDATE, "`disabled` is now managed differently"
    elif is_marked(live_xml):
        change.action, change.reason = Action.UPDATE, "managed by JJB (description marker); first dindjobs push"
    elif adopt:
        change.action, change.reason = Action.UPDATE, "not created by dindjobs; adopted (--adopt)"
    else:
        change.action = Action.CONFLICT
        change.reason = "exists in Jenkins but was not created by dindjobs or JJB (use --adopt to take it over)"
        return change
    push = item.make_xml()  # not kept on the item: only what a change needs is kept
    if not manages_disabled and has_disabled:
        live_disabled = top_level_text(live_xml, "disabled")
        if live_disabled is not None:
            push = with_disabled(push, live_disabled)  # `disabled` absent in YAML: keep Jenkins' value
    change.push_xml, change.rendered_signature = push, item.signature
    return change


def classify_prune(live: LiveItem, live_xml: str, record: dict, mode: str) -> Change:
    """Decide what ``--prune=mode`` does to an item the ledger owns and the YAML no longer defines."""
    kind = kind_of(live.kind)
    manages_disabled = bool(record.get("manages_disabled", True))
    drop = () if manages_disabled or not kind.has_disabled else ("disabled",)
    before = canonical(live_xml, drop)
    change = Change(live.kind, live.name, Action.UNCHANGED, is_folder=live.is_folder, before=before,
                    manages_disabled=manages_disabled)
    if not (is_marked(live_xml) or digest(before) in (record.get("stored"), record.get("pending"))):
        change.action = Action.CONFLICT
        change.reason = "in the ledger, but replaced in Jenkins by an item that is not ours: not pruned"
        return change
    if mode == "disable":
        if kind.disable is None or live.is_folder:
            change.reason = f"no longer in the YAML; a {'folder' if live.is_folder else live.kind} cannot be disabled"
        elif top_level_text(live_xml, "disabled") == "true":
            change.reason = "no longer in the YAML; already disabled"
        else:
            change.action, change.reason = Action.DISABLE, "no longer in the YAML"
        return change
    change.action, change.reason = Action.DELETE, "no longer in the YAML"
    return change


def guard_folder_deletes(changes: list[Change], listing: Listing) -> None:
    """A folder delete would take its whole content: keep it unless every item inside goes too."""
    deleting = {item_key(c.kind, c.name)[1] for c in changes
                if c.action is Action.DELETE and kind_of(c.kind).nested}
    for change in changes:
        if change.action is not Action.DELETE or not change.is_folder:
            continue
        prefix = change.name.lower() + "/"
        foreign = [item.name for key, item in listing.jobs.items() if key.startswith(prefix) and key not in deleting]
        if foreign:
            change.action = Action.CONFLICT
            change.reason = (f"folder holds {len(foreign)} item(s) dindjobs does not prune "
                             f"(e.g. {foreign[0]!r}): not deleted")


def order(changes: Sequence[Change]) -> list[Change]:
    """Apply order: kinds by rank (jobs, then views), parents first; removals last, in the
    reverse rank order, deepest first."""
    def key(change: Change) -> tuple:
        rank = kind_of(change.kind).rank
        if change.action in REMOVALS:
            return (1, -rank, -change.depth, change.name.lower())
        return (0, rank, change.depth, change.name.lower())
    return sorted(changes, key=key)


# --- building a plan against a server ------------------------------------------------------


def check_parents(rendered: Rendered, listing: Listing) -> None:
    """Every folder level a job needs is in the YAML or in Jenkins (checked before any write)."""
    defined = {item.name.lower(): item for item in rendered.jobs}
    for item in rendered.jobs:
        parent = item.parent
        if parent is None or parent.lower() in defined:
            continue
        live = listing.job(parent)
        if live is None:
            where = f"{item.source}: " if item.source else ""
            raise RenderError(f"{where}job {item.name!r}: folder {parent!r} is neither in the YAML nor in Jenkins")
        if not live.is_folder:
            raise RenderError(f"{item.source}: job {item.name!r}: {parent!r} exists in Jenkins but is not a folder")


class Snapshot:
    """The server side of a plan, gathered in the background (sync starts it before rendering).

    One tree listing, then the ledger of that instance (its identity is known from the
    listing's headers), then the configs of every owned item that exists, fetched in parallel.
    :meth:`config` returns a future for any other item, fetched on demand.
    """

    def __init__(self, client: Jenkins, ledger_for: Callable[[str, str | None], Ledger], workers: int = 8) -> None:
        self.client = client
        self.ledger_for = ledger_for
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dindjobs-plan")
        self._lock = threading.Lock()
        self._configs: dict[tuple[str, str], Future] = {}
        self._started = time.monotonic()
        #: where the plan's time went: ``reads`` (first request to last answer, overlapping the
        #: rendering), ``read_requests``, and from :func:`make_plan` ``compare`` (from the last
        #: answer until every item is classified: the part of classifying the reads did not hide)
        #: and ``classify_cpu`` (this thread's CPU for classifying, hidden or not).
        self.timings: dict = {"reads": 0.0, "read_requests": 0, "compare": 0.0, "classify_cpu": 0.0}
        self._state = self._pool.submit(self._load)

    def _read_done(self) -> None:
        with self._lock:
            self.timings["read_requests"] += 1
            self.timings["reads"] = time.monotonic() - self._started

    @property
    def last_answer(self) -> float:
        """When the last read was answered (``time.monotonic``)."""
        return self._started + self.timings["reads"]

    def _load(self) -> tuple[Listing, Ledger]:
        listing = self.client.list_items()
        self._read_done()
        ledger = self.ledger_for(self.client.url, self.client.identity)
        for kind, name, _record in ledger.items():
            live = kind_of(kind).find(listing, name)
            if live is not None:
                self.config(live)
        return listing, ledger

    def result(self) -> tuple[Listing, Ledger]:
        """The listing and the ledger (raises what the listing raised)."""
        return self._state.result()

    def config(self, live: LiveItem) -> Future:
        """A future for the stored config.xml of ``live`` (None if it vanished since the listing)."""
        key = item_key(live.kind, live.name)
        with self._lock:
            future = self._configs.get(key)
            if future is None:
                future = self._configs[key] = self._pool.submit(self._fetch, live)
            return future

    def _fetch(self, live: LiveItem) -> str | None:
        try:
            return kind_of(live.kind).read(self.client, live.name)
        except JenkinsNotFoundError:
            return None
        finally:
            self._read_done()

    def close(self) -> None:
        """Stop fetching (pending fetches are cancelled)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_plan(rendered: Rendered, client: Jenkins, *, ledger_for: Callable[[str, str | None], Ledger],
              prune: str | None = None, adopt: bool = False, fetch_workers: int = 8,
              snapshot: Snapshot | None = None) -> tuple[Plan, Ledger]:
    """List Jenkins, fetch the configs that matter in parallel, and classify every item.

    ``ledger_for(url, identity)`` opens the ownership ledger once the server's identity is
    known. Pass a ``snapshot`` already started to overlap the requests with rendering. Returns
    the plan and the ledger. Sends GET requests only.
    """
    own_snapshot = snapshot is None
    if snapshot is None:
        snapshot = Snapshot(client, ledger_for, fetch_workers)
    try:
        return _plan(rendered, snapshot, prune=prune, adopt=adopt)
    finally:
        if own_snapshot:
            snapshot.close()


def _plan(rendered: Rendered, snapshot: Snapshot, *, prune: str | None, adopt: bool) -> tuple[Plan, Ledger]:
    listing, ledger = snapshot.result()
    check_parents(rendered, listing)
    changes: list[Change] = []
    pending: list[tuple[RenderedItem | None, LiveItem, Future]] = []
    for item in rendered.items:
        live = kind_of(item.kind).find(listing, item.name)
        if live is None:
            changes.append(classify(item, None, None, ledger.get(item.kind, item.name), adopt=adopt))
        else:
            pending.append((item, live, snapshot.config(live)))
    desired_keys = {item_key(i.kind, i.name) for i in rendered.items}
    owned_live = 0
    stale: list[tuple[str, str]] = []
    for kind, name, _record in ledger.items():
        live = kind_of(kind).find(listing, name)
        if live is None:
            stale.append((kind, name))
            continue
        owned_live += 1
        if prune and item_key(kind, name) not in desired_keys:
            pending.append((None, live, snapshot.config(live)))

    for item, live, future in pending:
        live_xml = future.result()
        comparing = time.thread_time()
        try:
            if item is None:
                if live_xml is None:
                    continue
                change = classify_prune(live, live_xml, ledger.get(live.kind, live.name), prune)
            else:
                change = classify(item, live if live_xml is not None else None, live_xml,
                                  ledger.get(item.kind, item.name), adopt=adopt)
        except ET.ParseError as exc:
            raise JenkinsAPIError(f"Jenkins sent a config of {live.kind} {live.name!r} that is not XML: {exc}") from None
        if change.action is Action.UNCHANGED:
            change.before = change.after = ""  # nothing to diff: keep memory low on big instances
        changes.append(change)
        snapshot.timings["classify_cpu"] += time.thread_time() - comparing
    snapshot.timings["compare"] = max(0.0, time.monotonic() - snapshot.last_answer)
    guard_folder_deletes(changes, listing)
    plan = Plan(order(changes), url=snapshot.client.url, identity=snapshot.client.identity, prune=prune,
                owned=owned_live, stale=stale)
    return plan, ledger
