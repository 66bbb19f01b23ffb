"""Loopback helpers for tests (never any other address)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port that is free right now (nothing listens on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
