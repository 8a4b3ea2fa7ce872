"""``ksa.retention`` on a real worker: it prunes what KSA_HISTORY_DAYS says and keeps
the rollup; beat schedules it from the settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubestack_ai.plugins.models import DiagnosticResult, Status

pytestmark = pytest.mark.timeout(90)


def _result(at: dt.datetime) -> DiagnosticResult:
    return DiagnosticResult(plugin_id="redis-diagnostics", plugin_version="1.0.0",
                            target_name="r", status=Status.WARNING, started_at=at,
                            duration=0.1, outcome="completed")


def test_retention_task_prunes_old_runs_and_keeps_the_rollup(app: Any, store: Any) -> None:
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=15)
    store.record_run("ret-old", "redis:ret", "redis-diagnostics", (), _result(old), ttl=None)
    store.record_run("ret-new", "redis:ret", "redis-diagnostics", (),
                     _result(now - dt.timedelta(days=13)), ttl=None)
    out = app.send_task("ksa.retention").get(timeout=60)
    assert out == {"runs": 1, "audit": 0, "adhoc": 0, "storage_error": None}
    assert [r.run_id for r in store.history("redis:ret")] == ["ret-new"]
    [day] = store.rollups("redis:ret")
    assert (day.day, day.runs, day.worst_status) == (old.date(), 1, "warning")


@pytest.mark.parametrize(("env", "every"), [
    ({}, 3600.0),
    ({"KSA_HISTORY_DAYS": "0", "KSA_HISTORY_PER_TARGET": "500",
      "KSA_RETENTION_INTERVAL": "600"}, 600.0),
    ({"KSA_HISTORY_DAYS": "0"}, 3600.0),  # one-off targets still age out (KSA_ADHOC_DAYS)
    ({"KSA_HISTORY_DAYS": "0", "KSA_ADHOC_DAYS": "0"}, None),
])
def test_beat_schedules_retention_from_the_settings(tmp_path: Any, env: dict[str, str],
                                                    every: float | None) -> None:
    import time

    from kubestack_ai.scheduler.beat import RETENTION_JOB, FleetScheduler
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("targets: []\n")
    app = create_app(Settings.from_env({"KSA_HOME": str(tmp_path), "KSA_FLEET": str(fleet),
                                        **env}))
    try:
        s = FleetScheduler(app=app, lazy=False)
        job = s.schedule.get(RETENTION_JOB)
        if every is None:
            assert job is None
        else:
            assert job is not None and (job.task, job.interval) == ("ksa.retention", every)
            assert job.due == pytest.approx(time.time() + every, abs=5)  # not at start
        s.close()
    finally:
        app.close()


def test_retention_task_ages_out_one_off_targets(app: Any, store: Any) -> None:
    """Issue 25.1: every one-off ``ksa diagnose`` stayed a target for good. Once a fleet
    is declared, a one-off target not run for KSA_ADHOC_DAYS (7) leaves the view."""
    from kubestack_ai.storage import FleetMember

    now = dt.datetime.now(dt.UTC)
    store.set_fleet([FleetMember(k, "redis", ("127.0.0.1:9",), 60.0)
                     for k in ("redis:fleet-1", "redis:ret")])  # redis:ret: the test above
    store.record_run("adhoc-old", "redis:127.0.0.1:6380", "redis-diagnostics", (),
                     _result(now - dt.timedelta(days=8)), ttl=None)
    store.record_run("adhoc-new", "redis:127.0.0.1:6381", "redis-diagnostics", (),
                     _result(now - dt.timedelta(days=6)), ttl=None)
    try:
        out = app.send_task("ksa.retention").get(timeout=60)
        assert out["adhoc"] == 1
        assert store.target("redis:127.0.0.1:6380") is None
        assert store.target("redis:127.0.0.1:6381") is not None
    finally:
        store.set_fleet([])
