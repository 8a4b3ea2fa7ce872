"""Plugin state shared by the workers, and the audit log, on every backend."""

from __future__ import annotations

import datetime as dt

import pytest

from kubestack_ai.plugins.models import PluginState
from kubestack_ai.storage import StorageError, Store


def test_upsert_creates_then_changes_only_the_given_fields(store: Store) -> None:
    assert store.get_plugin_state("redis-diagnostics") is None
    before = dt.datetime.now(dt.UTC)
    rec = store.set_plugin_state("redis-diagnostics", version="1.2.0",
                                 state=PluginState.RUNNING, config={"timeouts": {"diagnose": 5}})
    assert (rec.plugin_id, rec.enabled, rec.version, rec.state, rec.config, rec.last_error,
            rec.generation) == ("redis-diagnostics", True, "1.2.0", "running",
                                {"timeouts": {"diagnose": 5}}, None, 0)
    assert rec.updated_at >= before - dt.timedelta(seconds=1)
    assert rec.updated_at.tzinfo is not None

    rec = store.set_plugin_state("redis-diagnostics", enabled=False, state="failed",
                                 last_error="connect: refused")
    assert (rec.enabled, rec.version, rec.state, rec.config, rec.last_error) == (
        False, "1.2.0", "failed", {"timeouts": {"diagnose": 5}}, "connect: refused")
    # last_error not given: kept; given as None: cleared
    assert store.set_plugin_state("redis-diagnostics", state="running").last_error == (
        "connect: refused")
    assert store.set_plugin_state("redis-diagnostics", last_error=None).last_error is None
    assert store.get_plugin_state("redis-diagnostics") == store.list_plugin_states()[0]


def test_list_plugin_states_sorted(store: Store) -> None:
    for pid in ("mysql-diagnostics", "kafka-diagnostics", "redis-diagnostics"):
        store.set_plugin_state(pid, version="1.0.0")
    assert [r.plugin_id for r in store.list_plugin_states()] == [
        "kafka-diagnostics", "mysql-diagnostics", "redis-diagnostics"]


def test_request_reload_bumps_the_generation(store: Store) -> None:
    assert store.request_reload("new-plugin") == 1  # unknown plugin: created at generation 1
    assert store.request_reload("new-plugin") == 2
    store.set_plugin_state("redis-diagnostics", version="1.0.0")
    assert store.get_plugin_state("redis-diagnostics").generation == 0  # type: ignore[union-attr]
    assert store.request_reload("redis-diagnostics") == 1
    assert store.request_reload("redis-diagnostics") == 2
    rec = store.set_plugin_state("redis-diagnostics", version="1.1.0", reload=True)
    assert (rec.version, rec.generation) == ("1.1.0", 3)
    assert store.set_plugin_state("redis-diagnostics", state="running").generation == 3


def test_config_must_be_json(store: Store) -> None:
    with pytest.raises(StorageError, match="config is not JSON"):
        store.set_plugin_state("p", config={"when": object()})
    assert store.get_plugin_state("p") is None


def _record(action: str, at: str, ok: bool = True, error: str | None = None) -> dict[str, object]:
    # the dict plugins.PluginManager.execute hands its audit hooks
    return {"plugin_id": "redis-diagnostics", "target": "cache-1", "action": action,
            "params": {"count": 10}, "ok": ok, "error": error, "at": at,
            "result": {"freed": 3} if ok else None}


def test_audit_log_newest_first(store: Store) -> None:
    store.record_action(_record("slowlog_reset", "2026-11-25T12:00:00+00:00"))
    store.record_action(_record("flushall", "2026-11-25T12:05:00+00:00", ok=False,
                                error="plugin 'redis-diagnostics': action 'flushall' refused: "
                                      "dangerous"))
    store.record_action(_record("memory_purge", "2026-11-25T13:00:00+01:00"))  # 12:00 UTC
    log = store.audit_log()
    assert [a.action for a in log] == ["flushall", "memory_purge", "slowlog_reset"]
    a = log[0]
    assert (a.plugin_id, a.target, a.ok, a.params, a.result) == (
        "redis-diagnostics", "cache-1", False, {"count": 10}, None)
    assert a.error is not None and "refused" in a.error
    assert a.at == dt.datetime(2026, 11, 25, 12, 5, tzinfo=dt.UTC)
    assert log[2].result == {"freed": 3}
    assert len(store.audit_log(limit=2)) == 2


def test_audit_hook_of_the_plugin_manager_feeds_the_log(store: Store) -> None:
    from kubestack_ai.plugins import MiddlewareTarget, PluginManager

    manager = PluginManager()
    manager.load_builtins()
    manager.audit_hooks.append(store.record_action)
    target = MiddlewareTarget(type="tcp", endpoints=("127.0.0.1:9",))
    manager.execute(target, "no-such-action")  # refused: still audited
    log = store.audit_log()
    assert len(log) == 1 and log[0].action == "no-such-action" and log[0].ok is False
    assert log[0].target == "tcp:127.0.0.1:9" and log[0].outcome == "refused"


def test_an_attempt_is_written_before_it_runs_then_completed(store: Store) -> None:
    from kubestack_ai.plugins.execution import ActionRecord
    from kubestack_ai.storage import AuditLog

    sink = AuditLog(store)
    at = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
    started = ActionRecord(at=at, who="ops@host", plugin_id="redis-diagnostics",
                           target="redis:cache-1", action="kill_idle_clients",
                           params={"min_idle_seconds": 60}, outcome="started")
    handle = sink.begin(started)
    a = store.audit_log(target="redis:cache-1")[0]
    # a process that dies mid-action leaves this: the attempt, no result
    assert (a.id, a.outcome, a.ok, a.who, a.result) == (handle, "started", False, "ops@host",
                                                        None)
    sink.end(handle, started.model_copy(update={"outcome": "succeeded", "duration": 0.25,
                                                "result": {"killed": 2}}))
    a = store.audit_log(target="redis:cache-1")[0]
    assert (a.outcome, a.ok, a.duration, a.result) == ("succeeded", True, 0.25, {"killed": 2})
    assert store.audit_log(target="redis:other") == []
    with pytest.raises(StorageError, match="audit record 999999 not found"):
        sink.end(999999, started)


def test_an_attempt_left_started_is_closed_killed_by_task_or_abandoned(store: Store) -> None:
    from kubestack_ai.plugins.execution import ActionRecord
    from kubestack_ai.storage import AuditLog

    at = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)

    def begin(target: str, task_id: str | None) -> int:
        return int(AuditLog(store, task_id).begin(ActionRecord(
            at=at, who="task x", plugin_id="redis-diagnostics", target=target, action="nap",
            outcome="started")))

    killed, done, lost = begin("redis:k", "t-1"), begin("redis:d", "t-2"), begin("redis:l", None)
    store.update_action(done, {"at": at.isoformat(), "target": "redis:d", "action": "nap",
                               "outcome": "succeeded", "duration": 0.5})
    ended = at + dt.timedelta(seconds=5)
    assert store.end_started_action("t-1", "killed", "killed at the hard time limit (5 s)",
                                    ended) == 1
    assert store.end_started_action("t-1", "killed", "again", ended) == 0  # idempotent
    assert store.end_started_action("t-2", "killed", "too late", ended) == 0  # its own result
    a = store.audit_log(target="redis:k")[0]
    assert (a.id, a.outcome, a.ok, a.duration, a.error) == (
        killed, "killed", False, 5.0, "killed at the hard time limit (5 s)")
    assert store.audit_log(target="redis:d")[0].outcome == "succeeded"
    # nobody saw the third one die: the sweep closes it once past any time limit
    assert store.close_abandoned_actions(600, now=at + dt.timedelta(seconds=300)) == 0
    assert store.close_abandoned_actions(600, now=at + dt.timedelta(seconds=900)) == 1
    a = store.audit_log(target="redis:l")[0]
    assert (a.id, a.outcome, a.duration) == (lost, "abandoned", 900.0)
    assert a.error is not None and a.error.startswith("abandoned: no result 900 s after")
    assert [r.outcome for r in store.audit_log(target="redis:k")] == ["killed"]


def test_reload_sources_and_rollback(store: Store) -> None:
    rec = store.record_reload("p", "/opt/p-1.1")
    assert (rec.generation, rec.sources, rec.source) == (1, ("/opt/p-1.1",), "/opt/p-1.1")
    rec = store.record_reload("p", None)  # reloaded in place: the location stays
    assert (rec.generation, rec.source) == (2, "/opt/p-1.1")
    store.record_reload("p", "/opt/p-1.2")
    rec = store.request_rollback("p")
    assert (rec.generation, rec.source) == (4, "/opt/p-1.1")
    rec = store.request_rollback("p")
    assert (rec.generation, rec.sources, rec.source) == (5, (), None)
    with pytest.raises(StorageError, match="no reload from another location to roll back"):
        store.request_rollback("p")
    assert store.get_plugin_state("p").generation == 5  # type: ignore[union-attr]
