"""The ``diagnose.postgres`` and ``health.postgres`` tasks on a real Celery worker,
against the machine's PostgreSQL on 5432 (read-only: the schema category only reads the
catalogs): the run is stored, and what the web view and /metrics read is there."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import port_open, require

pytestmark = pytest.mark.timeout(90)


def test_diagnose_and_health_tasks_store_the_run(app: Any, store: Any) -> None:
    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    target = {"name": "pg-task", "endpoints": ["127.0.0.1:5432"]}
    r = app.send_task("diagnose.postgres", kwargs={"target": target, "categories": ["schema"],
                                                   "force": True}).get(timeout=60)
    assert r["outcome"] == "completed" and r["stored"] is True, r
    assert r["result"]["plugin_id"] == "postgres-diagnostics" and r["result"]["errors"] == {}, r
    assert store.get_run(r["task_id"]) is not None
    h = app.send_task("health.postgres", kwargs={"target": target}).get(timeout=60)
    assert h["outcome"] == "completed", h
