"""A redis-server of the test module's own as broker, and a worker on it: the machine's
Redis is shared (other suites' workers consume from its numbered databases), so a test
that must see only its own worker's answers runs on its own broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import RedisServer, Worker, client_app, worker_env


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
