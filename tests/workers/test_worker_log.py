"""What a worker says at start-up reaches its log (Celery sets up the worker's logging
after ``worker_init``: lines logged there were lost)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)


def test_start_up_lines_reach_the_worker_log(worker: Any) -> None:
    log = worker.log.read_text()
    assert "plugin faulty-diagnostics (faulty): soft 2s, hard 4s, memory cap 600 MB" in log
    assert "broker visibility timeout " in log
    assert f"runs kept while storage is unreachable: spool {worker.home / 'spool'} (0 now)" in log
