"""The ``diagnose.postgres`` and ``health.postgres`` tasks on a real Celery worker (the
workers suite's own fixtures: a redis-server broker of the module's own, SQLite storage):
the run is stored, and what the web view and /metrics read is there."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pgserver import PgServer
from tests.postgres.pg_helpers import endpoint
from tests.workers.conftest import app, store, worker  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(90)


def test_diagnose_and_health_tasks_store_the_run(app: Any, store: Any, pg: PgServer) -> None:  # noqa: F811
    target = {"name": "pg-task", "endpoints": [endpoint(pg)]}
    r = app.send_task("diagnose.postgres", kwargs={"target": target, "categories": ["schema"],
                                                   "force": True}).get(timeout=60)
    assert r["outcome"] == "completed" and r["stored"] is True, r
    stored = store.get_run(r["task_id"])
    assert stored is not None
    assert r["result"]["plugin_id"] == "postgres-diagnostics" and r["result"]["errors"] == {}, r
    h = app.send_task("health.postgres", kwargs={"target": target}).get(timeout=60)
    assert h["outcome"] == "completed", h
