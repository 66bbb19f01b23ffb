"""The ownership ledger: which items dindjobs pushed to which Jenkins, and what Jenkins stored.

One JSON file per Jenkins instance under ``<state_dir>/ledger/``, keyed by the instance identity
(``X-Instance-Identity``, the instance's public key) when the server sends one, else by the
normalised URL (:func:`dindjobs.config.canonical_url`): a fresh Jenkins at a reused URL starts
with an empty ledger, and ``localhost`` vs ``127.0.0.1`` is the same instance. It never decides
existence (the server does); it only answers "is this ours?" and "did Jenkins change it since
our push?".

Per item it keeps the hash of the canonical XML we pushed (``desired``), the hash of what
Jenkins stored (``stored``: the pushed hash for a job, read back for a view), whether the YAML
set ``disabled``, and a fingerprint of the exact bytes on both sides for the next no-op.

Crash safety: every change goes first to an append-only journal next to the file
(``<key>.journal``, one JSON line per change, written with a single ``write`` on an
``O_APPEND`` descriptor, so a killed process leaves whole lines). Before a push, an *intent*
line is written: if the process dies before the push is confirmed, the next run still owns
whatever the push created. Opening a writable ledger folds the journal into the file
atomically (temp file, fsync, rename, then the journal is removed). A file or a journal line
that does not parse is an error, never an empty ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dindjobs.config import canonical_url
from dindjobs.errors import ConfigError
from dindjobs.jobs.items import item_key

VERSION = 1


def _key(kind: str, name: str) -> str:
    return ":".join(item_key(kind, name))


def instance_key(url: str, identity: str | None) -> str:
    """What identifies a Jenkins across runs: its identity, else its normalised URL."""
    source = f"identity\n{identity}" if identity else f"url\n{canonical_url(url)}"
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def ledger_path(state_dir: Path, url: str, identity: str | None) -> Path:
    """Where the ledger of (url, identity) lives."""
    return Path(state_dir) / "ledger" / f"{instance_key(url, identity)}.json"


def _legacy_path(state_dir: Path, url: str, identity: str | None) -> Path:
    # Before the journal, ledgers were keyed by the URL as spelled plus the identity.
    key = hashlib.sha256(f"{url}\n{identity or ''}".encode()).hexdigest()[:24]
    return Path(state_dir) / "ledger" / f"{key}.json"


class Ledger:
    """Thread-safe record of owned items for one Jenkins instance."""

    def __init__(self, path: Path | None, url: str, identity: str | None, items: dict | None = None,
                 writable: bool = True) -> None:
        self.path = path
        self.url = url
        self.identity = identity
        self.writable = writable and path is not None
        self._items: dict[str, dict] = dict(items or {})
        self._lock = threading.Lock()
        self._journal_fd: int | None = None
        self.dirty = False

    @property
    def journal_path(self) -> Path | None:
        return self.path.with_suffix(".journal") if self.path is not None else None

    @classmethod
    def open(cls, state_dir: Path, url: str, identity: str | None, *, writable: bool = True) -> Ledger:
        """Load the ledger of this instance (empty if there is none yet), journal replayed.

        A writable ledger folds its journal into the file now; pass ``writable=False`` for a
        look that changes nothing (``sync --plan`` holds no lock and must not write).
        """
        path = ledger_path(state_dir, url, identity)
        legacy = _legacy_path(state_dir, url, identity)
        source = path if path.exists() or not legacy.exists() else legacy
        items = _read_file(source)
        journal = path.with_suffix(".journal")
        replayed = _replay(journal, items, tolerate_torn_tail=not writable)
        ledger = cls(path, url, identity, items, writable=writable)
        if writable and (replayed or source != path):
            ledger.dirty = True
            ledger.save()
            if source != path:
                source.unlink(missing_ok=True)
        return ledger

    @classmethod
    def memory(cls, url: str = "", identity: str | None = None) -> Ledger:
        """A ledger that is never saved (for plans and tests)."""
        return cls(None, url, identity, writable=False)

    def get(self, kind: str, name: str) -> dict | None:
        """The record of an item, or None if we do not own it."""
        with self._lock:
            record = self._items.get(_key(kind, name))
            return dict(record) if record else None

    def items(self) -> Iterator[tuple[str, str, dict]]:
        """``(kind, name, record)`` for every owned item."""
        with self._lock:
            snapshot = list(self._items.values())
        for record in snapshot:
            yield record["kind"], record["name"], dict(record)

    def __len__(self) -> int:
        return len(self._items)

    def intend(self, kind: str, name: str, *, desired: str | None, manages_disabled: bool) -> None:
        """Note, before a push is sent, that it may create or change this item; journaled at once."""
        with self._lock:
            entry = {"op": "intent", "kind": kind, "name": name, "desired": desired,
                     "manages_disabled": manages_disabled}
            self._items[_key(kind, name)] = _with_intent(self._items.get(_key(kind, name)), entry)
            self._journal(entry)

    def record(self, kind: str, name: str, *, desired: str | None, stored: str, manages_disabled: bool,
               fingerprint: str | None = None) -> None:
        """Remember that we own an item and what Jenkins stored for it (``fingerprint``: the exact
        bytes of the rendering and of the stored config, see :func:`canonical.fingerprint`)."""
        with self._lock:
            record = {
                "kind": kind, "name": name, "desired": desired, "stored": stored,
                "manages_disabled": manages_disabled, "fingerprint": fingerprint, "at": int(time.time()),
            }
            self._items[_key(kind, name)] = record
            self._journal({"op": "record", **record})

    def restore(self, kind: str, name: str, record: dict | None) -> None:
        """Put back the record an intent replaced (the push was refused): None forgets the item."""
        if record is None:
            self.forget(kind, name)
            return
        with self._lock:
            self._items[_key(kind, name)] = dict(record)
            self._journal({**record, "op": "record"})

    def forget(self, kind: str, name: str) -> None:
        """Drop an item (deleted, or gone from Jenkins)."""
        with self._lock:
            if self._items.pop(_key(kind, name), None) is not None:
                self._journal({"op": "forget", "kind": kind, "name": name})

    def _journal(self, entry: dict) -> None:
        self.dirty = True
        if not self.writable:
            return
        if self._journal_fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.write(self._journal_fd, (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))

    def save(self) -> None:
        """Fold everything into the file atomically (temp file, fsync, rename, mode 0600), then
        drop the journal; a no-op for memory and read-only ledgers."""
        if not self.writable or not self.dirty:
            return
        with self._lock:
            data = {
                "version": VERSION,
                "url": self.url,
                "identity_sha256": hashlib.sha256((self.identity or "").encode()).hexdigest(),
                "items": dict(sorted(self._items.items())),
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".ledger-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh, indent=1, sort_keys=True)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            # Replaying the journal again would give the same items, so a crash here is harmless.
            if self._journal_fd is not None:
                os.close(self._journal_fd)
                self._journal_fd = None
            self.journal_path.unlink(missing_ok=True)
            self.dirty = False

    def close(self) -> None:
        """Release the journal (what was journaled stays on disk for the next open)."""
        with self._lock:
            if self._journal_fd is not None:
                os.close(self._journal_fd)
                self._journal_fd = None


def _with_intent(record: dict | None, intent: dict) -> dict:
    """The record of an item whose push may or may not have landed.

    A new item is owned as if Jenkins stored what we pushed; an owned one keeps its record and
    also accepts the pushed hash as ours (``pending``), so neither outcome loses ownership."""
    if record is None:
        return {"kind": intent["kind"], "name": intent["name"], "desired": intent["desired"],
                "stored": intent["desired"], "manages_disabled": intent["manages_disabled"],
                "fingerprint": None, "pending": intent["desired"], "at": int(time.time())}
    return {**record, "pending": intent["desired"]}


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"ownership ledger {path} is unreadable ({type(exc).__name__})") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"ownership ledger {path} is corrupt (not JSON{', empty' if not text else ''})",
                          hint="move it away to start a new one; dindjobs will not guess what it owned") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("items"), dict):
        raise ConfigError(f"ownership ledger {path} has an unknown format")
    return data["items"]


def _replay(journal: Path, items: dict, tolerate_torn_tail: bool) -> bool:
    """Apply the journal's lines to ``items``; True when there was anything to apply."""
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"ownership journal {journal} is unreadable ({type(exc).__name__})") from None
    lines = raw.split(b"\n")
    tail = lines.pop()  # after the last newline: empty unless a write was cut short
    if tail and not tolerate_torn_tail:
        raise ConfigError(f"ownership journal {journal} ends with a half-written line",
                          hint="the machine stopped during a sync; check the items of that sync, then "
                               "remove the last line of the journal")
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            op, key = entry["op"], _key(entry["kind"], entry["name"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"ownership journal {journal} is corrupt at line {number}") from None
        if op == "record":
            entry.pop("op")
            items[key] = entry
        elif op == "forget":
            items.pop(key, None)
        elif op == "intent":
            items[key] = _with_intent(items.get(key), entry)
        else:
            raise ConfigError(f"ownership journal {journal} is corrupt at line {number} (operation {op!r})")
    return bool(lines)
