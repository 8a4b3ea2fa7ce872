"""A redis-server of the test module's own as broker, and a worker on it: the machine's
Redis is shared (other suites' workers consume from its numbered databases), so a test
that must see only its own worker's answers runs on its own broker."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, port_open, require

from .conftest import Worker, client_app, worker_env


class RedisServer:
    def __init__(self, tmp: Path) -> None:
        require(shutil.which("redis-server") is not None, "redis-server binary")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() - t0 < 10, "own redis-server did not start"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def own_worker(tmp_path_factory: pytest.TempPathFactory, **extra: str) -> Iterator[Worker]:
    """A worker (SQLite storage in a temp dir) on a redis-server of its own."""
    from kubestack_ai.storage import Store

    home = tmp_path_factory.mktemp("ksa-own")
    broker = RedisServer(home)
    store = Store(f"sqlite:///{home}/ksa.db")
    store.migrate()
    store.dispose()
    w = Worker(home, worker_env(home, KSA_BROKER_URL=broker.url, **extra))
    try:
        w.wait_ready()
        yield w
    finally:
        w.stop()
        broker.close()


def own_app(worker: Worker) -> Iterator[Any]:
    a = client_app(worker.env)
    yield a
    a.close()
