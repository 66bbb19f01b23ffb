"""Engine errors: one line that says what to do, from the exception chains docker-py raises."""

from __future__ import annotations

import socket

import docker.errors
import pytest
import requests
from urllib3.exceptions import ProtocolError

from dindjobs.errors import DockerEngineError
from dindjobs.wrapper.engine import connect, engine_error


def sdk_connection_error(cause: OSError) -> docker.errors.DockerException:
    """The exception chain docker-py raises when it cannot reach the socket (as seen on 20.10)."""
    try:
        try:
            raise requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", cause)) from cause
        except requests.exceptions.ConnectionError as exc:
            raise docker.errors.DockerException(f"Error while fetching server API version: {exc}") from exc
    except docker.errors.DockerException as exc:
        return exc


def test_permission_denied_on_the_socket_says_what_to_do():
    error = engine_error(sdk_connection_error(PermissionError(13, "Permission denied")), "unix:///var/run/docker.sock")
    assert error.one_line() == ("permission denied on unix:///var/run/docker.sock (add your user to the 'docker' "
                                "group (then log in again), or run as root)")


def test_no_engine_at_a_missing_socket(tmp_path):
    with pytest.raises(DockerEngineError) as info:
        connect(f"unix://{tmp_path}/none.sock")
    assert info.value.one_line().startswith(f"no Docker engine answers at unix://{tmp_path}/none.sock")
    assert "start dockerd" in info.value.one_line()


def test_no_engine_behind_a_dead_socket(tmp_path):
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))  # exists, nobody listens: connection refused
        with pytest.raises(DockerEngineError, match="no Docker engine answers"):
            connect(f"unix://{path}")
