"""Local state of a wrapper: the admin password file `dindjobs up` hands to the container.

The password lives in ``<state_dir>/<name>/admin-password`` (file 0600, directory 0700), where
:func:`dindjobs.config.load_settings` finds it again. It is never put in argv or in the
container's environment: the container gets the file as a read-only bind mount.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from dindjobs.config import ADMIN_PASSWORD_FILE, ENV_PASSWORD, ENV_PASSWORD_FILE, Secret, read_secret_file
from dindjobs.errors import SecretError


@dataclasses.dataclass(frozen=True)
class AdminPassword:
    """Where the admin password for a wrapper is, and how it got there (never the value)."""

    path: Path
    source: str  # "generated", "reused", "env DINDJOBS_PASSWORD" or "env DINDJOBS_PASSWORD_FILE"


def admin_password_path(wrapper_state_dir: Path) -> Path:
    """The state file holding a wrapper's admin password."""
    return wrapper_state_dir / ADMIN_PASSWORD_FILE


def discard_admin_password(wrapper_state_dir: Path) -> None:
    """Delete the state file holding a wrapper's admin password, and its directory if left empty."""
    admin_password_path(wrapper_state_dir).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        wrapper_state_dir.rmdir()


def ensure_admin_password(wrapper_state_dir: Path, env: Mapping[str, str] | None = None) -> AdminPassword:
    """Find or create the admin password file for a wrapper.

    Order: ``DINDJOBS_PASSWORD_FILE`` (used in place, must exist), ``DINDJOBS_PASSWORD`` (written
    to the state file), the existing state file, else a newly generated password.
    """
    env = os.environ if env is None else env
    if env.get(ENV_PASSWORD_FILE):
        path = Path(env[ENV_PASSWORD_FILE]).expanduser().resolve()
        read_secret_file(path, "password")  # fails early, naming the file, if unusable
        return AdminPassword(path, f"env {ENV_PASSWORD_FILE}")
    target = admin_password_path(wrapper_state_dir)
    if env.get(ENV_PASSWORD):
        _write_private(target, Secret(env[ENV_PASSWORD], f"env {ENV_PASSWORD}"))
        return AdminPassword(target, f"env {ENV_PASSWORD}")
    if target.exists():
        read_secret_file(target, "admin password")
        _check_private(target)
        return AdminPassword(target, "reused")
    _write_private(target, Secret(secrets.token_urlsafe(24), "generated"))
    return AdminPassword(target, "generated")


def _write_private(path: Path, secret: Secret) -> None:
    """Write ``secret`` to ``path`` so that only this user can ever read it (no 0644 window)."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise SecretError(f"cannot write the admin password file {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret.reveal() + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretError(
            f"the admin password file {path} is readable by others (mode {mode:o})",
            hint=f"chmod 600 {path}",
        )
