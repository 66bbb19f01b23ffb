"""The item model: every kind of thing sync manages (jobs, views), described once.

A :class:`Kind` says how names of that kind compare (Jenkins item names are case-insensitive,
view names are not), whether names are folder paths, where the kind comes in the apply order,
whether it has a ``<disabled>`` flag, and how an item is found in the server's listing and
read, created, updated, deleted and disabled through the Jenkins client. Plan, apply and the
ledger ask the kind instead of branching on ``"job"``/``"view"``, so adding a kind is one
:func:`register` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dindjobs.jenkins.client import Jenkins, Listing, LiveItem


@dataclass(frozen=True)
class Kind:
    """One kind of item and how sync handles it."""

    name: str
    case_insensitive: bool
    nested: bool  # names are folder paths ("a/b"): parents are written first, removed last
    rank: int  # writes go by ascending rank (removals the other way round)
    has_disabled: bool  # the config has a top-level <disabled> flag sync may manage or prune with
    find: Callable[[Listing, str], LiveItem | None]
    read: Callable[[Jenkins, str], str]
    create: Callable[[Jenkins, str, str], None]
    update: Callable[[Jenkins, str, str], None]
    delete: Callable[[Jenkins, str], None]
    disable: Callable[[Jenkins, str], None] | None = None
    # Jenkins keeps a pushed config as sent, up to its identity transform (job config.xml), so
    # what it stored is known without reading it back; False (read back) where it re-serialises.
    stores_as_pushed: bool = False

    def key(self, name: str) -> str:
        """The name as Jenkins compares it."""
        return name.lower() if self.case_insensitive else name

    def depth(self, name: str) -> int:
        """Folder levels above the item (always 0 for kinds that do not nest)."""
        return name.count("/") if self.nested else 0


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Make ``kind`` known to plan, apply and the ledger (replaces one of the same name)."""
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Forget a kind (for kinds registered by tests)."""
    KINDS.pop(name, None)


def kind_of(name: str) -> Kind:
    """The registered kind called ``name``."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown item kind {name!r} (known: {', '.join(sorted(KINDS))})") from None


def item_key(kind: str, name: str) -> tuple[str, str]:
    """``(kind, name as Jenkins compares it)``: the identity of an item across plan, apply and ledger."""
    known = KINDS.get(kind)
    return kind, known.key(name) if known is not None else name


JOB = register(Kind(
    "job", case_insensitive=True, nested=True, rank=0, has_disabled=True, stores_as_pushed=True,
    find=lambda listing, name: listing.job(name),
    read=lambda client, name: client.get_job_config(name),
    create=lambda client, name, xml: client.create_job(name, xml),
    update=lambda client, name, xml: client.update_job(name, xml),
    delete=lambda client, name: client.delete_job(name),
    disable=lambda client, name: client.disable_job(name),
))

VIEW = register(Kind(
    "view", case_insensitive=False, nested=False, rank=1, has_disabled=False, stores_as_pushed=False,
    find=lambda listing, name: listing.views.get(name),
    read=lambda client, name: client.get_view_config(name),
    create=lambda client, name, xml: client.create_view(name, xml),
    update=lambda client, name, xml: client.update_view(name, xml),
    delete=lambda client, name: client.delete_view(name),
))
