"""The ownership ledger: which items dindjobs pushed to which Jenkins, and what Jenkins stored.

One JSON file per Jenkins instance under ``<state_dir>/ledger/``, keyed by the URL *and* the
instance identity (``X-Instance-Identity``, the instance's public key), so a fresh Jenkins at a
reused URL starts with an empty ledger. It never decides existence (the server does); it only
answers "is this ours?" and "did Jenkins change it since our push?".

Per item it keeps the hash of the canonical XML we pushed (``desired``), the hash of what
Jenkins stored when read back (``stored``) and whether the YAML set ``disabled``.
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

from dindjobs.errors import ConfigError
from dindjobs.jobs.items import item_key

VERSION = 1


def _key(kind: str, name: str) -> str:
    return ":".join(item_key(kind, name))


def ledger_path(state_dir: Path, url: str, identity: str | None) -> Path:
    """Where the ledger of (url, identity) lives."""
    key = hashlib.sha256(f"{url}\n{identity or ''}".encode()).hexdigest()[:24]
    return Path(state_dir) / "ledger" / f"{key}.json"


class Ledger:
    """Thread-safe record of owned items for one Jenkins instance."""

    def __init__(self, path: Path | None, url: str, identity: str | None, items: dict | None = None) -> None:
        self.path = path
        self.url = url
        self.identity = identity
        self._items: dict[str, dict] = dict(items or {})
        self._lock = threading.Lock()
        self.dirty = False

    @classmethod
    def open(cls, state_dir: Path, url: str, identity: str | None) -> Ledger:
        """Load the ledger of this instance (empty if there is none yet)."""
        path = ledger_path(state_dir, url, identity)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, url, identity)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"ownership ledger {path} is unreadable ({type(exc).__name__}); "
                              "move it away to start a new one") from None
        if data.get("version") != VERSION or not isinstance(data.get("items"), dict):
            raise ConfigError(f"ownership ledger {path} has an unknown format")
        return cls(path, url, identity, data["items"])

    @classmethod
    def memory(cls, url: str = "", identity: str | None = None) -> Ledger:
        """A ledger that is never saved (for plans and tests)."""
        return cls(None, url, identity)

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

    def record(self, kind: str, name: str, *, desired: str | None, stored: str, manages_disabled: bool,
               fingerprint: str | None = None) -> None:
        """Remember that we own an item and what Jenkins stored for it (``fingerprint``: the exact
        bytes of the rendering and of the stored config, see :func:`canonical.fingerprint`)."""
        with self._lock:
            self._items[_key(kind, name)] = {
                "kind": kind, "name": name, "desired": desired, "stored": stored,
                "manages_disabled": manages_disabled, "fingerprint": fingerprint, "at": int(time.time()),
            }
            self.dirty = True

    def forget(self, kind: str, name: str) -> None:
        """Drop an item (deleted, or gone from Jenkins)."""
        with self._lock:
            if self._items.pop(_key(kind, name), None) is not None:
                self.dirty = True

    def save(self) -> None:
        """Write atomically (temp file + rename), mode 0600; a no-op for memory ledgers."""
        if self.path is None or not self.dirty:
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
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self.dirty = False
