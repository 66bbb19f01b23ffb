"""Users, API tokens, HTTP sessions, CSRF crumbs and permissions, as Jenkins 2.580 has them.

- Basic auth takes ``user:password`` or ``user:apitoken``; bad credentials are a 401, never a
  fall-back to anonymous. Token auth is exempt from crumbs; password auth is not.
- A crumb is the SHA-256 of (instance salt, user name, session id), as from Jenkins 2.543 on (no
  client IP): a crumb from one session is useless on another, and sessions die with every (re)start.
- The authorization strategy is "logged-in users can do anything", with optional anonymous
  read access and optional per-user restrictions (global and per item) to exercise 403 vs 404.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path

from dindjobs.config import Secret, read_secret_file

log = logging.getLogger("dindjobs.standin")

ANONYMOUS = "anonymous"
MAX_SESSIONS = 10_000
CRUMB_FIELD = "Jenkins-Crumb"

# Short names used by the stand-in's API -> Jenkins permission ids (X-Required-Permission).
PERMISSIONS = {
    "Overall/Administer": "hudson.model.Hudson.Administer",
    "Overall/Manage": "jenkins.model.Jenkins.Manage",
    "Overall/SystemRead": "jenkins.model.Jenkins.SystemRead",
    "Overall/Read": "hudson.model.Hudson.Read",
    "Job/Discover": "hudson.model.Item.Discover",
    "Job/Read": "hudson.model.Item.Read",
    "Job/ExtendedRead": "hudson.model.Item.ExtendedRead",
    "Job/Build": "hudson.model.Item.Build",
    "Job/Cancel": "hudson.model.Item.Cancel",
    "Job/Configure": "hudson.model.Item.Configure",
    "Job/Create": "hudson.model.Item.Create",
    "Job/Delete": "hudson.model.Item.Delete",
    "View/Read": "hudson.model.View.Read",
    "View/Create": "hudson.model.View.Create",
    "View/Configure": "hudson.model.View.Configure",
    "View/Delete": "hudson.model.View.Delete",
}
# A permission is also granted by the ones listed here.
IMPLIED_BY = {
    "Overall/Manage": {"Overall/Administer"},
    "Overall/SystemRead": {"Overall/Administer"},
    "Job/Discover": {"Job/Read"},
    "Job/ExtendedRead": {"Job/Configure"},
}
ANONYMOUS_READ = {"Overall/Read", "Job/Discover", "Job/Read", "View/Read"}


class BadCredentials(Exception):
    """Basic credentials that match no user (Jenkins answers 401)."""


@dataclasses.dataclass
class User:
    """A user with a password and any number of API tokens (kept as SHA-256 digests)."""

    name: str
    password: Secret | None = None
    token_digests: dict[str, str] = dataclasses.field(default_factory=dict)  # uuid -> hex digest

    def add_token(self, value: str, uuid_: str | None = None) -> str:
        uid = uuid_ or str(uuid.uuid4())
        self.token_digests[uid] = _digest(value)
        return uid

    def password_matches(self, candidate: str) -> bool:
        return self.password is not None and hmac.compare_digest(
            self.password.reveal().encode(), candidate.encode())

    def token_matches(self, candidate: str) -> bool:
        d = _digest(candidate)
        return any(hmac.compare_digest(d, known) for known in self.token_digests.values())


@dataclasses.dataclass(frozen=True)
class Auth:
    """Who a request runs as."""

    name: str = ANONYMOUS
    via_token: bool = False

    @property
    def anonymous(self) -> bool:
        return self.name == ANONYMOUS


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def parse_users_file(path: str | os.PathLike[str]) -> list[User]:
    """Read ``name:password`` or ``name:password:apitoken`` lines (``#`` comments allowed)."""
    users = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            # Never echo the line: it holds a password.
            raise ValueError(f"{path}:{lineno}: expected name:password or name:password:apitoken")
        user = User(parts[0], Secret(parts[1], f"file {path}"))
        if len(parts) == 3 and parts[2]:
            user.add_token(parts[2], "users-file")
        users.append(user)
    return users


def admin_from_environment(home: Path, env: Mapping[str, str] | None = None) -> User:
    """The admin the image's secret mechanism describes.

    ``JENKINS_ADMIN_ID`` (default ``admin``) and ``JENKINS_ADMIN_PASSWORD_FILE`` (default
    ``/run/secrets/jenkins-admin-password``). Without that file, a random password is written to
    ``<home>/secrets/initialAdminPassword`` (mode 0600), as Jenkins' setup wizard does.
    """
    env = os.environ if env is None else env
    name = env.get("JENKINS_ADMIN_ID") or "admin"
    path = Path(env.get("JENKINS_ADMIN_PASSWORD_FILE") or "/run/secrets/jenkins-admin-password")
    if path.exists():
        return User(name, read_secret_file(path, "admin password"))
    initial = home / "secrets" / "initialAdminPassword"
    if not initial.exists():
        initial.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(initial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(16) + "\n")
    log.warning("no admin password file at %s; the password of %r is in %s", path, name, initial)
    return User(name, read_secret_file(initial, "admin password"))


class Realm:
    """Users and their persisted API tokens (``<home>/users/<name>/apiTokens.json``)."""

    def __init__(self, home: Path, users: Iterable[User]) -> None:
        self.home = home
        self.users = {u.name: u for u in users}
        self._lock = threading.Lock()
        for user in self.users.values():
            path = self._tokens_path(user.name)
            if path.exists():
                user.token_digests.update(json.loads(path.read_text(encoding="utf-8")))

    def _tokens_path(self, name: str) -> Path:
        return self.home / "users" / name / "apiTokens.json"

    def authenticate(self, header: str | None) -> Auth:
        """The identity behind an ``Authorization`` header (raises BadCredentials)."""
        if not header:
            return Auth()
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return Auth()
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadCredentials("malformed Basic header") from None
        if ":" not in decoded:
            raise BadCredentials("malformed Basic header")
        name, _, secret = decoded.partition(":")
        user = self.users.get(name)
        if user is not None:
            if user.token_matches(secret):
                return Auth(name, via_token=True)
            if user.password_matches(secret):
                return Auth(name)
        raise BadCredentials(f"Invalid password/token for user: {name}")

    def generate_token(self, name: str) -> tuple[str, str]:
        """A new API token for ``name``: (uuid, value). Only the digest is stored."""
        value = "11" + secrets.token_hex(16)
        with self._lock:
            user = self.users[name]
            uid = user.add_token(value)
            persisted = {k: v for k, v in user.token_digests.items() if k != "users-file"}
            path = self._tokens_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(persisted), encoding="utf-8")
        return uid, value


class Sessions:
    """HTTP sessions of one boot, and the crumbs bound to them."""

    def __init__(self, salt: str) -> None:
        self.salt = salt
        self.cookie_name = "JSESSIONID." + hashlib.sha256(salt.encode()).hexdigest()[:8]
        self._ids: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def create(self) -> str:
        sid = "node0" + secrets.token_hex(12) + ".node0"
        with self._lock:
            self._ids[sid] = None
            while len(self._ids) > MAX_SESSIONS:  # sessions expire; the idlest go first
                self._ids.popitem(last=False)
        return sid

    def valid(self, sid: str | None) -> bool:
        with self._lock:
            if sid is None or sid not in self._ids:
                return False
            self._ids.move_to_end(sid)
            return True

    def crumb(self, user: str, ip: str, sid: str | None) -> str:
        """The crumb for (user, session); 64 hex characters. ``ip`` is not part of it: since
        Jenkins 2.543 crumbs no longer include the client IP (the parameter stays for callers)."""
        del ip
        material = f"{self.salt};{user};{sid or ''}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def crumb_ok(self, given: str | None, user: str, ip: str, sid: str | None) -> bool:
        if not given or not self.valid(sid):
            return False
        return hmac.compare_digest(given, self.crumb(user, ip, sid))


class Policy:
    """Who may do what: full control once logged in, unless restricted."""

    def __init__(self, anonymous_read: bool = False) -> None:
        self.anonymous_read = anonymous_read
        # user -> {"" (global) or lower-cased item full name: permissions}
        self.restrictions: dict[str, dict[str, set[str]]] = {}

    def restrict(self, user: str, permissions: Iterable[str], item: str | None = None) -> None:
        """Limit ``user`` to ``permissions`` (added to earlier grants), globally or on ``item``."""
        perms = set(permissions)
        unknown = perms - set(PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permissions: {sorted(unknown)}")
        scopes = self.restrictions.setdefault(user, {})
        scopes.setdefault((item or "").casefold(), set()).update(perms)

    def has(self, auth: Auth, perm: str, item: str | None = None) -> bool:
        """Whether ``auth`` holds ``perm`` (on the item with full name ``item``, if given)."""
        granted = self._granted(auth, item)
        if granted is None or "Overall/Administer" in granted:
            return True
        return perm in granted or bool(IMPLIED_BY.get(perm, set()) & granted)

    def _granted(self, auth: Auth, item: str | None) -> set[str] | None:
        if auth.anonymous:
            granted = set(ANONYMOUS_READ) if self.anonymous_read else set()
            scopes = self.restrictions.get(ANONYMOUS, {})
        elif auth.name in self.restrictions:
            granted = set()
            scopes = self.restrictions[auth.name]
        else:
            return None
        granted |= scopes.get("", set())
        if item:
            parts = item.casefold().split("/")
            for i in range(1, len(parts) + 1):
                granted |= scopes.get("/".join(parts[:i]), set())
        return granted
