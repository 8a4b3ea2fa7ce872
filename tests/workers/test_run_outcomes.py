"""A run's stored outcome is its true one: a run its deadline stopped before it read
anything is ``timed_out`` and never served from the cache, and a task redelivered after
its loss was stored (``killed``) replaces that run when it completes."""

from __future__ import annotations

from typing import Any

import pytest

from kubestack_ai.plugins import DiagnosticResult, Status
from kubestack_ai.plugins.models import utcnow

pytestmark = pytest.mark.timeout(90)


def target(name: str, behaviour: str) -> dict[str, Any]:
    return {"name": name, "endpoints": ["127.0.0.1:1"], "options": {"behaviour": behaviour}}


def test_a_run_its_deadline_stopped_is_timed_out_and_never_cached(app: Any, store: Any) -> None:
    # the soft limit above the plugin's deadline (2 s): the deadline stops the run first
    def send() -> dict[str, Any]:
        return app.send_task("diagnose.faulty", kwargs={"target": target("stall", "stall"),
                                                        "cache_ttl": 60},
                             soft_time_limit=6, time_limit=8).get(timeout=30)  # type: ignore[no-any-return]

    first = send()
    assert first["result"]["errors"]["work"] == "not run: the deadline passed before this category"
    assert first["outcome"] == "timed_out" and first["stored"] is True
    second = send()
    assert second["cached"] is False and second["outcome"] == "timed_out"
    assert [r.outcome for r in store.history("faulty:stall")] == ["timed_out", "timed_out"]


def test_redelivered_task_replaces_its_killed_run(app: Any, store: Any) -> None:
    task_id = "redelivered-0001"
    killed = DiagnosticResult(plugin_id="faulty-diagnostics", target_name="again",
                              status=Status.UNKNOWN, started_at=utcnow(), duration=4.0,
                              outcome="killed", errors={"_run": "killed at the hard time limit"})
    # what the worker stored when the first delivery's child was killed
    assert store.record_run(task_id, "faulty:again", "faulty-diagnostics", (), killed, None)
    r = app.send_task("diagnose.faulty", task_id=task_id,
                      kwargs={"target": target("again", "ok"), "force": True}).get(timeout=30)
    assert r["outcome"] == "completed" and r["stored"] is True
    [run] = store.history("faulty:again")
    assert (run.run_id, run.outcome) == (task_id, "completed")
    # a completed run is never replaced by a later loss report
    assert not store.record_run(task_id, "faulty:again", "faulty-diagnostics", (), killed, None,
                                supersede_failed=True)
    assert store.get_run(task_id).outcome == "completed"
