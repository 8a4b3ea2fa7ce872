"""What a worker says at start-up reaches its log (Celery sets up the worker's logging
after ``worker_init``: lines logged there were lost)."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)


def test_start_up_lines_reach_the_worker_log(worker: Any) -> None:
    log = worker.log.read_text()
    assert "plugin faulty-diagnostics (faulty): soft 2s, hard 4s, memory cap 600 MB" in log
    assert "broker visibility timeout " in log
    assert f"runs kept while storage is unreachable: spool {worker.home / 'spool'} (0 now)" in log


def test_a_runs_lines_carry_the_plugin_id_and_the_target_key(app: Any, worker: Any) -> None:
    """Every log line about a run names the plugin and the target (issue 10, item 10):
    the worker's line for the finished run, and the plugin's own lines within it."""
    target = {"name": "logged-run", "endpoints": ["127.0.0.1:1"],
              "options": {"behaviour": "ok"}}
    res = app.send_task("diagnose.faulty", kwargs={"target": target, "force": True})
    out = res.get(timeout=30)
    assert out["outcome"] == "completed", out
    suffix = f"[plugin=faulty-diagnostics target={out['target']}]"
    line = ""
    for _ in range(50):  # the worker's log is written by its main process, a moment later
        line = next((ln for ln in worker.log.read_text().splitlines()
                     if f"task {res.id}: completed" in ln), "")
        if line:
            break
        time.sleep(0.1)
    assert line.endswith(suffix), line
