"""Shared fixtures. Tests talk to real servers; in CI a missing server is a failure."""

from __future__ import annotations

import os
import socket

import pytest

CI = bool(os.environ.get("CI"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(ok: bool, why: str) -> None:
    """Skip locally when a server is missing; fail in CI."""
    if not ok:
        if CI:
            pytest.fail(f"required service missing in CI: {why}")
        pytest.skip(why)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
