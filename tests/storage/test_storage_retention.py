"""Retention: runs and audit records pruned by age and by count per target, and only
those; what the pruned runs said survives as one rollup row per target, plugin and day."""

from __future__ import annotations

import datetime as dt

from kubestack_ai.plugins.models import Finding, Severity, Status
from kubestack_ai.storage import PruneReport, Store

PID = "redis-diagnostics"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
OLD = (NOW - dt.timedelta(days=20)).replace(hour=6, minute=0, second=0)


def _f(code: str) -> Finding:
    return Finding(code=code, category="memory", severity=Severity.WARNING, title=code,
                   evidence={"x": 1}, suggestion="do something")


def _run(store: Store, make_result, run_id: str, key: str, at: dt.datetime,
         status: Status = Status.HEALTHY, codes: tuple[str, ...] = ()) -> None:
    store.record_run(run_id, key, PID, (), make_result(at=at, status=status,
                                                       findings=[_f(c) for c in codes]),
                     ttl=None)


def _ids(store: Store, key: str) -> list[str]:
    return [r.run_id for r in store.history(key, limit=100)]


def test_prune_by_age_keeps_recent_runs_and_rolls_up_the_old_day(store: Store,
                                                                  make_result) -> None:
    _run(store, make_result, "a1", "redis:a", OLD)
    _run(store, make_result, "a2", "redis:a", OLD + dt.timedelta(minutes=1), Status.WARNING,
         ("redis.memory.usage_high",))
    _run(store, make_result, "a3", "redis:a", OLD + dt.timedelta(minutes=2), Status.CRITICAL,
         ("redis.memory.usage_high", "redis.persistence.rdb_failed", "redis.memory.usage_high"))
    _run(store, make_result, "a4", "redis:a", OLD + dt.timedelta(minutes=3), Status.UNKNOWN)
    _run(store, make_result, "a-new", "redis:a", NOW - dt.timedelta(days=1), Status.CRITICAL,
         ("redis.memory.usage_high",))
    _run(store, make_result, "b1", "redis:b", OLD)
    _run(store, make_result, "b-new", "redis:b", NOW - dt.timedelta(days=13))

    assert store.prune(older_than=dt.timedelta(days=14)) == PruneReport(runs=5, audit=0)
    assert _ids(store, "redis:a") == ["a-new"]
    assert _ids(store, "redis:b") == ["b-new"]
    [a] = store.rollups("redis:a")
    assert (a.plugin_id, a.day, a.runs, a.worst_status) == (PID, OLD.date(), 4, "critical")
    assert a.statuses == {"healthy": 1, "warning": 1, "critical": 1, "unknown": 1}
    # runs in which each code was seen (a3 reports usage_high twice: one run)
    assert a.findings == {"redis.memory.usage_high": 2, "redis.persistence.rdb_failed": 1}
    assert (a.first_at, a.last_at) == (OLD, OLD + dt.timedelta(minutes=3))
    [b] = store.rollups("redis:b")
    assert (b.runs, b.worst_status, b.findings) == (1, "healthy", {})
    # nothing left to prune: a second pass changes nothing
    assert store.prune(older_than=dt.timedelta(days=14)) == PruneReport()
    assert store.rollups("redis:a") == [a]


def test_prune_by_count_keeps_the_newest_per_target_and_rollups_add_up(store: Store,
                                                                       make_result) -> None:
    day = (NOW - dt.timedelta(days=2)).replace(hour=1, minute=0, second=0)
    for i in range(6):
        _run(store, make_result, f"a{i}", "redis:a", day + dt.timedelta(minutes=i),
             Status.WARNING if i == 0 else Status.HEALTHY,
             ("redis.memory.usage_high",) if i == 0 else ())
    for i in range(2):
        _run(store, make_result, f"b{i}", "redis:b", day + dt.timedelta(minutes=i))
    # two runs with the same start time: the one stored last is the newer
    _run(store, make_result, "a-twin", "redis:a", day + dt.timedelta(minutes=5))

    assert store.prune(per_target=3).runs == 4
    assert _ids(store, "redis:a") == ["a-twin", "a5", "a4"]
    assert _ids(store, "redis:b") == ["b1", "b0"]
    [a] = store.rollups("redis:a")
    assert (a.runs, a.worst_status, a.findings) == (4, "warning", {"redis.memory.usage_high": 1})
    assert store.rollups("redis:b") == []

    # the same day pruned again later, by age: the rollup adds the rest of the day
    assert store.prune(older_than=dt.timedelta(days=1)).runs == 5
    [a] = store.rollups("redis:a")
    assert (a.runs, a.statuses) == (7, {"warning": 1, "healthy": 6})
    assert (a.first_at, a.last_at) == (day, day + dt.timedelta(minutes=5))
    assert store.rollups("redis:b")[0].runs == 2
    assert store.rollups("redis:a", since=day.date() + dt.timedelta(days=1)) == []


def test_prune_audit_log_by_age_and_count(store: Store) -> None:
    def act(target: str, at: dt.datetime, action: str) -> None:
        store.record_action({"plugin_id": PID, "target": target, "action": action,
                             "params": {}, "ok": True, "error": None, "at": at.isoformat()})

    act("redis:a", OLD, "old")
    for i in range(4):
        act("redis:a", NOW - dt.timedelta(hours=4 - i), f"a{i}")
    act("redis:b", NOW - dt.timedelta(hours=1), "b0")
    assert store.prune(older_than=dt.timedelta(days=14), per_target=2) == PruneReport(audit=3)
    assert sorted(r.action for r in store.audit_log()) == ["a2", "a3", "b0"]


def test_no_limits_prune_nothing(store: Store, make_result) -> None:
    _run(store, make_result, "a1", "redis:a", OLD)
    assert store.prune() == PruneReport()
    assert store.purge_history(dt.timedelta(days=30)) == 0
    assert _ids(store, "redis:a") == ["a1"]
