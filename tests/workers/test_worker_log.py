"""What a worker says at start-up reaches its log (Celery sets up the worker's logging
after ``worker_init``: lines logged there were lost)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Worker
from .own_broker import own_app, own_worker


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    yield from own_worker(tmp_path_factory)


@pytest.fixture(scope="module")
def app(worker: Worker) -> Iterator[Any]:
    yield from own_app(worker)


pytestmark = pytest.mark.timeout(60)


def test_start_up_lines_reach_the_worker_log(worker: Any) -> None:
    log = worker.log.read_text()
    assert "plugin faulty-diagnostics (faulty): soft 2s, hard 4s, memory cap 600 MB" in log
    assert "broker visibility timeout " in log
    assert f"runs kept while storage is unreachable: spool {worker.home / 'spool'} (0 now)" in log
