"""Only one beat schedules: the Redis lock (shared broker) and the file lock (one machine)."""

from __future__ import annotations

import os
from pathlib import Path

from kubestack_ai.scheduler.lock import FileBeatLock, RedisBeatLock

from ..conftest import port_open, require


def test_redis_lock_one_holder_and_takeover() -> None:
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
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


def test_second_scheduler_stands_by(tmp_path: Path) -> None:
    from kubestack_ai.scheduler.beat import STANDBY_POLL, FleetScheduler
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("targets:\n  - {name: a, type: tcp, endpoints: ['127.0.0.1:9'],"
                     " interval: 60, health_interval: 0}\n")
    app = create_app(Settings.from_env({"KSA_HOME": str(tmp_path), "KSA_FLEET": str(fleet)}))
    first, second = FleetScheduler(app=app, lazy=False), FleetScheduler(app=app, lazy=False)
    try:
        first.tick()  # takes the lock and queues the new target's first diagnosis
        assert first.schedule["diagnose tcp:a"].total_run_count == 1
        assert second.tick() == STANDBY_POLL
        assert second.schedule["diagnose tcp:a"].total_run_count == 0
        queued = list((tmp_path / "broker" / "queue").iterdir())
        assert len(queued) == 1 and queued[0].name.endswith(".tcp.msg")
    finally:
        first.close()
        second.close()
        app.close()
