"""Browser sessions: who is signed in on which HTTP session, and where a sign-in may send them back.

A session id maps to a user once the sign-in form succeeded; the id is replaced at that moment
(session fixation), and the mapping dies with the session (a restart forgets every session).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping

from dindjobs.standin.security import ANONYMOUS, Auth

MAX_SIGNED_IN = 10_000
COOKIE_FLAGS = "Path=/; HttpOnly; SameSite=Lax"
SIGN_IN_PATH = ["j_spring_security_check"]


class SignIns:
    """Session id -> signed-in user name (least recently used first, bounded)."""

    def __init__(self) -> None:
        self._users: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, sid: str, user: str) -> None:
        with self._lock:
            self._users[sid] = user
            while len(self._users) > MAX_SIGNED_IN:
                self._users.popitem(last=False)

    def user(self, sid: str | None) -> str | None:
        with self._lock:
            if sid is None or sid not in self._users:
                return None
            self._users.move_to_end(sid)
            return self._users[sid]

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._users.pop(sid or "", None)


def session_auth(signins: SignIns, sessions, sid: str | None, users: Mapping[str, object]) -> Auth:
    """Who a request without credentials runs as: its live session's user (if still a user), else anonymous."""
    name = signins.user(sid) if sessions.valid(sid) else None
    if name is None or name == ANONYMOUS or name not in users:
        return Auth()
    return Auth(name)


def safe_target(value: str | None) -> str | None:
    """``from=`` as a path on this server, or None for anything that could leave it.

    Accepted: ``/path`` only. Refused: absolute URLs, scheme-relative ``//host``, backslashes
    (browsers read ``/\\host`` as ``//host``), control characters (browsers strip
    tabs and newlines, which can turn ``/\\t/host`` into ``//host``), and the sign-in pages.
    """
    if not value or not value.startswith("/") or value.startswith("//"):
        return None
    if any(c == "\\" or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return None
    first = value[1:].split("/", 1)[0].split("?", 1)[0]
    if first in ("login", "loginError", "logout", "j_spring_security_check"):
        return None
    return value
