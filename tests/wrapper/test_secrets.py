"""The admin password state file (src/dindjobs/wrapper/secrets.py)."""

from __future__ import annotations

import stat

import pytest

from dindjobs.config import load_settings
from dindjobs.errors import SecretError
from dindjobs.wrapper.secrets import ensure_admin_password

SECRET = "pw-3e1f9a7c-value"


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_once_private_and_found_by_settings(tmp_path):
    state = tmp_path / "state"
    first = ensure_admin_password(state / "dj", env={})
    assert first.source == "generated" and first.path == state / "dj" / "admin-password"
    assert mode(first.path) == 0o600 and mode(first.path.parent) == 0o700
    value = first.path.read_text().strip()
    assert len(value) >= 24
    again = ensure_admin_password(state / "dj", env={})
    assert again.source == "reused" and again.path.read_text().strip() == value
    settings = load_settings({"name": "dj"}, env={"DINDJOBS_STATE_DIR": str(state)})
    assert settings.user == "admin" and settings.password.reveal() == value
    assert value not in repr(first)


def test_env_password_is_written_to_the_state_file(tmp_path):
    result = ensure_admin_password(tmp_path / "dj", env={"DINDJOBS_PASSWORD": SECRET})
    assert result.source == "env DINDJOBS_PASSWORD"
    assert result.path.read_text().strip() == SECRET and mode(result.path) == 0o600
    assert SECRET not in repr(result)


def test_env_password_file_is_used_in_place(tmp_path):
    own = tmp_path / "mine"
    own.write_text(SECRET)
    result = ensure_admin_password(tmp_path / "dj", env={"DINDJOBS_PASSWORD_FILE": str(own)})
    assert result.path == own.resolve() and result.source == "env DINDJOBS_PASSWORD_FILE"
    assert not (tmp_path / "dj").exists()
    with pytest.raises(SecretError, match="does not exist"):
        ensure_admin_password(tmp_path / "dj", env={"DINDJOBS_PASSWORD_FILE": str(tmp_path / "missing")})


def test_a_state_file_readable_by_others_is_refused(tmp_path):
    result = ensure_admin_password(tmp_path / "dj", env={})
    result.path.chmod(0o644)
    with pytest.raises(SecretError, match="readable by others") as info:
        ensure_admin_password(tmp_path / "dj", env={})
    assert result.path.read_text().strip() not in str(info.value)
