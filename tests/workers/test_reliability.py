"""Reliability of the worker with a real prefork worker on Redis (db 11): soft limit,
hard limit, memory cap, a child killed mid-task, disabled plugins and reloads."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(90)


def send(app: Any, behaviour: str, name: str, limits: tuple[float, float] | None = None,
         **options: Any) -> Any:
    target = {"name": name, "endpoints": ["127.0.0.1:1"],
              "options": {"behaviour": behaviour, **options}}
    extra = {"soft_time_limit": limits[0], "time_limit": limits[1]} if limits else {}
    return app.send_task("diagnose.faulty", kwargs={"target": target, "force": True}, **extra)


def runs(store: Any, key: str) -> list[Any]:
    return store.history(key, limit=50)


def wait_for(fn: Any, timeout: float = 20, what: str = "condition") -> Any:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_every_type_has_tasks_registered_at_import(app: Any, worker: Any) -> None:
    names = set(app.tasks)
    for t in ("redis", "kafka", "mysql", "tcp", "faulty"):
        assert f"diagnose.{t}" in names and f"health.{t}" in names
    assert app.tasks["diagnose.faulty"].soft_time_limit == 2.0
    assert app.tasks["diagnose.faulty"].time_limit == 4.0
    assert app.amqp.router.route({}, "diagnose.faulty")["queue"].name == "faulty"


def test_soft_limit_stores_timed_out_with_partial_findings(app: Any, store: Any) -> None:
    r = send(app, "hang", "soft").get(timeout=30)
    assert r["outcome"] == "timed_out"
    assert r["stored"] is True
    assert [f["code"] for f in r["result"]["findings"]] == ["faulty.work.seen"]
    assert r["result"]["errors"]["work"] == "interrupted: SoftTimeLimitExceeded"
    [row] = runs(store, "faulty:soft")
    assert row.outcome == "timed_out" and row.run_id == r["task_id"]
    assert send(app, "ok", "after-soft").get(timeout=20)["outcome"] == "completed"


def test_hard_limit_kills_child_stores_killed_once(app: Any, store: Any, worker: Any) -> None:
    before = worker.children()
    res = send(app, "busy", "hard")
    with pytest.raises(Exception) as e:
        res.get(timeout=30)
    assert "TimeLimitExceeded" in type(e.value).__name__
    time.sleep(1.0)  # task_failure fires twice in 5.7: the second must not add a row
    # the main process only spools the killed run (no network there); the next run of
    # any child writes it
    ok = send(app, "ok", "after-hard").get(timeout=20)
    assert ok["outcome"] == "completed"
    assert ok["pid"] not in before  # the killed child was replaced
    rows = runs(store, "faulty:hard")
    assert [(r.run_id, r.outcome) for r in rows] == [(res.id, "killed")]
    assert "hard time limit" in rows[0].result.errors["_run"]


def test_memory_cap_turns_runaway_allocation_into_memoryerror(app: Any, store: Any) -> None:
    r = send(app, "alloc", "mem").get(timeout=30)
    assert r["stored"] is True
    assert r["result"]["errors"]["work"].startswith("MemoryError")
    [row] = runs(store, "faulty:mem")
    assert row.run_id == r["task_id"]
    ok = send(app, "ok", "after-mem").get(timeout=20)
    assert ok["outcome"] == "completed"
    assert ok["pid"] == r["pid"]  # the same child went on


def test_child_killed_mid_task_is_redelivered_and_stored_once(
        app: Any, store: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    # limits well above the worker's detection of a dead child (worker_lost_wait 2 s),
    # or on a loaded machine the hard limit could fire first and acknowledge the task
    res = send(app, "sleep", "sigkill", limits=(10, 12), pidfile=str(pidfile), seconds=1.0)
    first = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().split(),
                         what="task start")[0])
    os.kill(first, signal.SIGKILL)
    out = res.get(timeout=40)
    assert out["outcome"] == "completed" and out["pid"] != first
    pids = [int(p) for p in pidfile.read_text().split()]
    assert pids[0] == first and len(pids) == 2  # delivered again, ran once more
    assert [r.run_id for r in runs(store, "faulty:sigkill")] == [res.id]


def test_disabled_plugin_refused_then_reload_reaches_children(app: Any, store: Any) -> None:
    store.set_plugin_state("faulty-diagnostics", enabled=False)
    try:
        r = send(app, "ok", "disabled").get(timeout=20)
        assert r["error"] == "refused: plugin 'faulty-diagnostics' is disabled"
        assert runs(store, "faulty:disabled") == []
    finally:
        store.set_plugin_state("faulty-diagnostics", enabled=True)
    store.set_plugin_state("faulty-diagnostics", config={"options": {"marker": "v2"}})
    store.request_reload("faulty-diagnostics")
    r = send(app, "ok", "reloaded").get(timeout=20)
    assert r["result"]["metrics"]["marker"] == "v2"
    assert r["result"]["metrics"]["connects"] == 1  # a fresh plugin instance


def test_cached_result_served_and_plugin_instance_reused(app: Any) -> None:
    target = {"name": "cache", "endpoints": ["127.0.0.1:1"], "options": {"behaviour": "ok"}}
    first = app.send_task("diagnose.faulty", kwargs={"target": target}).get(timeout=20)
    again = app.send_task("diagnose.faulty", kwargs={"target": target}).get(timeout=20)
    forced = app.send_task("diagnose.faulty", kwargs={"target": target, "force": True}).get(timeout=20)
    assert (first["cached"], again["cached"], forced["cached"]) == (False, True, False)
    assert again["result"]["outcome"] == "cached"
    assert again["result"]["metrics"] == first["result"]["metrics"]
    # one worker child (-c 1), one plugin instance: it was reused, not built per task
    assert forced["pid"] == first["pid"]
    assert forced["result"]["metrics"]["connects"] == first["result"]["metrics"]["connects"] + 1


def test_bad_target_answers_without_echoing_input(app: Any, worker: Any) -> None:
    target = {"endpoints": ["127.0.0.1:1"], "auth": {"password": "hunter2-literal"}}
    r = app.send_task("diagnose.faulty", kwargs={"target": target}).get(timeout=20)
    assert r["error"].startswith("invalid target: auth.password: Value error, auth.password "
                                 "must be a secret reference")
    assert "hunter2-literal" not in repr(r)


def test_ksa_plugin_disable_enable_reload_reach_the_worker(app: Any, worker: Any) -> None:
    import subprocess
    import sys

    def ksa(*argv: str) -> str:
        out = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "plugin", *argv], env=worker.env,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return (out.stderr + out.stdout).strip()

    assert ksa("disable", "faulty-diagnostics").startswith("faulty-diagnostics: disabled")
    r = send(app, "ok", "cli-disabled").get(timeout=20)
    assert r["error"] == "refused: plugin 'faulty-diagnostics' is disabled"
    assert ksa("enable", "faulty-diagnostics").startswith("faulty-diagnostics: enabled")
    warm = send(app, "ok", "cli-warm").get(timeout=20)
    out = ksa("reload", "faulty-diagnostics")
    assert out.startswith("faulty-diagnostics: workers reload it before their next task "
                          "(generation ")
    assert "reloaded faulty-diagnostics: 0.1.0 -> 0.1.0" in out  # this process hot-reloaded
    r = send(app, "ok", "cli-reloaded").get(timeout=20)
    assert r["outcome"] == "completed" and r["pid"] == warm["pid"]
    assert r["result"]["metrics"]["connects"] == 1  # a fresh instance in the same child


def test_external_plugin_gets_tasks_and_runs_in_children(app: Any, worker: Any) -> None:
    assert "diagnose.http" in app.tasks and "health.http" in app.tasks
    target = {"name": "ext", "endpoints": ["127.0.0.1:1"]}  # nothing listens there
    r = app.send_task("diagnose.http", kwargs={"target": target, "force": True}).get(timeout=20)
    assert (r["plugin_id"], r["outcome"], r["status"]) == ("http-diagnostics", "completed",
                                                           "critical")
    assert r["result"]["findings"][0]["code"] == "http.connection.unreachable"
