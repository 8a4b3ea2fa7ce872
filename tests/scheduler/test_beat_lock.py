"""Only one beat schedules: the Redis lock (shared broker) and the file lock (one machine)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from scheduler.lock import FileBeatLock, RedisBeatLock


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_redis_lock_one_holder_and_takeover() -> None:
    if not _redis_up():
        if os.environ.get("CI"):
            pytest.fail("Redis on 127.0.0.1:6379 missing in CI")
        pytest.skip("Redis on 127.0.0.1:6379")
    key = f"ksa:test:beat:{os.getpid()}"
    a = RedisBeatLock("redis://127.0.0.1:6379/11", ttl=5, key=key)
    b = RedisBeatLock("redis://127.0.0.1:6379/11", ttl=5, key=key)
    try:
        assert a.acquire() and a.acquire()  # renewing our own lock
        assert not b.acquire()
        assert a.holder() == a.token
        a.release()
        assert b.acquire() and not a.acquire()
    finally:
        b.release()
        a.release()


def test_file_lock_one_holder(tmp_path: Path) -> None:
    a, b = FileBeatLock(tmp_path / "beat.lock"), FileBeatLock(tmp_path / "beat.lock")
    assert a.acquire() and a.acquire()
    assert not b.acquire()
    a.release()
    assert b.acquire()
    b.release()
