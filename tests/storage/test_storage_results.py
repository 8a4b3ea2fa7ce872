"""Result cache (TTL, category-set keying, purge) and run history, on every backend."""

from __future__ import annotations

import datetime as dt
import time

from sqlalchemy import text

from kubestack_ai.plugins.models import Snapshot, Status
from kubestack_ai.storage import Store

from .storage_factories import T0  # make_result's default

TK, PID = "redis:cache-1", "redis-diagnostics"


def test_cache_miss_then_hit_returns_the_result_marked_cached(store: Store, make_result,
                                                               make_finding) -> None:
    r = make_result(findings=[make_finding()], metrics={"used_memory": 993_000_000,
                                                       "ratio": 0.9297, "list": [1, "a"]},
                    status=Status.WARNING, categories=("memory", "latency"))
    assert store.cached_result(TK, PID, ("memory", "latency")) is None
    assert store.record_run("run-1", TK, PID, ("memory", "latency"), r, ttl=60) is True
    hit = store.cached_result(TK, PID, ("memory", "latency"))
    assert hit is not None
    assert hit.outcome == "cached"
    assert hit.model_copy(update={"outcome": "completed"}) == r
    assert hit.findings[0].evidence["note"] == "naïve ✓ unicode"


def test_cache_is_keyed_by_the_category_set_in_any_order(store: Store, make_result) -> None:
    store.record_run("run-1", TK, PID, ("memory", "latency"), make_result(), ttl=60)
    assert store.cached_result(TK, PID, ("latency", "memory")) is not None
    assert store.cached_result(TK, PID, ("latency", "memory", "memory")) is not None
    assert store.cached_result(TK, PID, ("memory",)) is None
    assert store.cached_result(TK, PID, ()) is None  # all categories is another key
    assert store.cached_result(TK, "other-plugin", ("memory", "latency")) is None
    assert store.cached_result("redis:CACHE-1", PID, ("memory", "latency")) is None  # case counts
    store.record_run("run-2", TK, PID, (), make_result(metrics={"all": 1}), ttl=60)
    full = store.cached_result(TK, PID, ())
    assert full is not None and full.metrics == {"all": 1}


def test_newer_run_replaces_the_cache_entry(store: Store, make_result) -> None:
    store.record_run("run-1", TK, PID, (), make_result(metrics={"n": 1}), ttl=60)
    store.record_run("run-2", TK, PID, (), make_result(metrics={"n": 2}), ttl=60)
    hit = store.cached_result(TK, PID, ())
    assert hit is not None and hit.metrics == {"n": 2}


def test_only_completed_runs_with_a_ttl_are_cached(store: Store, make_result) -> None:
    store.record_run("run-1", TK, PID, (), make_result(), ttl=None)
    store.record_run("run-2", TK, PID, (), make_result(), ttl=0)
    for i, outcome in enumerate(("timed_out", "killed", "failed")):
        store.record_run(f"bad-{i}", TK, PID, (), make_result(outcome=outcome), ttl=60)
    assert store.cached_result(TK, PID, ()) is None
    assert len(store.history(TK)) == 5


def test_expired_entries_miss_and_are_purged(store: Store, make_result) -> None:
    store.record_run("run-1", TK, PID, (), make_result(), ttl=0.3)
    store.record_run("run-2", "redis:other", PID, (), make_result(), ttl=3600)
    assert store.cached_result(TK, PID, ()) is not None
    time.sleep(0.4)
    assert store.cached_result(TK, PID, ()) is None
    assert store.purge_expired() == 1
    assert store.purge_expired() == 0
    assert store.cached_result("redis:other", PID, ()) is not None
    assert len(store.history(TK)) == 1  # purging the cache keeps the history


def test_record_run_is_idempotent_by_run_id(store: Store, make_result) -> None:
    first = make_result(metrics={"n": 1})
    assert store.record_run("task-1", TK, PID, (), first, ttl=60) is True
    # Celery fired the failure hook twice / redelivered: same id, different content.
    again = make_result(metrics={"n": 2}, outcome="killed", status=Status.UNKNOWN)
    assert store.record_run("task-1", TK, PID, (), again, ttl=60) is False
    assert store.record_run("task-1", TK, PID, (), first, ttl=60) is False
    runs = store.history(TK)
    assert [(r.run_id, r.outcome, r.result.metrics) for r in runs] == [("task-1", "completed",
                                                                        {"n": 1})]
    hit = store.cached_result(TK, PID, ())
    assert hit is not None and hit.metrics == {"n": 1}


def test_completed_redelivery_supersedes_a_recorded_kill_when_asked(store: Store,
                                                                     make_result) -> None:
    killed = make_result(outcome="killed", status=Status.UNKNOWN)
    done = make_result(metrics={"n": 1})
    assert store.record_run("task-1", TK, PID, (), killed, ttl=60) is True
    assert store.record_run("task-1", TK, PID, (), done, ttl=60) is False  # default: unchanged
    assert store.history(TK)[0].outcome == "killed"
    assert store.record_run("task-1", TK, PID, (), done, ttl=60, supersede_failed=True) is True
    assert [r.outcome for r in store.history(TK)] == ["completed"]
    assert store.cached_result(TK, PID, ()) is not None
    # a completed run is never replaced
    assert store.record_run("task-1", TK, PID, (), killed, ttl=60, supersede_failed=True) is False
    assert store.get_run("task-1").outcome == "completed"  # type: ignore[union-attr]


def test_plugin_runs_since_oldest_first(store: Store, make_result) -> None:
    """A canary's comparison reads one plugin's runs since its start (plugins/index)."""
    for i in (2, 0, 3):
        store.record_run(f"pr-{i}", TK, PID, (), make_result(at=T0 + dt.timedelta(minutes=i)),
                         ttl=None)
    store.record_run("pr-other", TK, "other-plugin", (), make_result(at=T0), ttl=None)
    runs = store.plugin_runs(PID, T0 + dt.timedelta(minutes=1))
    assert [r.run_id for r in runs] == ["pr-2", "pr-3"]


def test_history_newest_first_with_limit(store: Store, make_result) -> None:
    for i in (2, 0, 4, 1, 3):  # recorded out of order: ordered by start time
        store.record_run(f"run-{i}", TK, PID, (), make_result(at=T0 + dt.timedelta(minutes=i)),
                         ttl=None)
    store.record_run("elsewhere", "redis:other", PID, (), make_result(), ttl=None)
    assert [r.run_id for r in store.history(TK)] == ["run-4", "run-3", "run-2", "run-1", "run-0"]
    assert [r.run_id for r in store.history(TK, limit=2)] == ["run-4", "run-3"]
    assert store.history("redis:nothing") == []
    r = store.history(TK)[0]
    assert (r.target_key, r.plugin_id, r.status, r.outcome, r.duration) == (
        TK, PID, "healthy", "completed", 0.25)


def test_latest_results_one_per_target(store: Store, make_result) -> None:
    store.record_run("a-old", "redis:a", PID, (), make_result(at=T0), ttl=None)
    store.record_run("a-new", "redis:a", PID, (),
                     make_result(at=T0 + dt.timedelta(seconds=1), status=Status.CRITICAL),
                     ttl=None)
    store.record_run("b-1", "mysql:b", "mysql-diagnostics", (), make_result(at=T0), ttl=None)
    latest = store.latest_results()
    assert [(r.target_key, r.run_id, r.status) for r in latest] == [
        ("mysql:b", "b-1", "healthy"), ("redis:a", "a-new", "critical")]


def test_snapshots_oldest_first_from_completed_runs_only(store: Store, make_result) -> None:
    for i in range(5):
        store.record_run(f"run-{i}", TK, PID, (),
                         make_result(at=T0 + dt.timedelta(minutes=i), metrics={"evicted": i}),
                         ttl=None)
    store.record_run("killed", TK, PID, (),
                     make_result(at=T0 + dt.timedelta(minutes=9), outcome="killed"), ttl=None)
    store.record_run("other-plugin", TK, "tcp", (), make_result(metrics={"x": 1}), ttl=None)
    snaps = store.snapshots(TK, PID, limit=3)
    assert snaps == (Snapshot(at=T0 + dt.timedelta(minutes=2), metrics={"evicted": 2}),
                     Snapshot(at=T0 + dt.timedelta(minutes=3), metrics={"evicted": 3}),
                     Snapshot(at=T0 + dt.timedelta(minutes=4), metrics={"evicted": 4}))
    assert len(store.snapshots(TK, PID)) == 5


def test_datetimes_are_stored_as_utc(store: Store, make_result) -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    at = dt.datetime(2026, 11, 25, 13, 0, 0, 654321, tzinfo=paris)
    store.record_run("run-1", TK, PID, (), make_result(at=at), ttl=None)
    got = store.history(TK)[0]
    assert got.started_at == at
    assert got.started_at.utcoffset() == dt.timedelta(0)
    assert got.started_at.hour == 12 and got.started_at.microsecond == 654321
    assert got.recorded_at is not None and got.recorded_at.tzinfo is not None
    with store.engine.connect() as c:  # what the column holds: the UTC wall time
        raw = c.execute(text("SELECT started_at FROM ksa_run")).scalar()
    if isinstance(raw, str):  # SQLite keeps datetimes as ISO text
        raw = dt.datetime.fromisoformat(raw)
    assert raw.replace(tzinfo=None) == dt.datetime(2026, 11, 25, 12, 0, 0, 654321)


def test_long_target_keys_are_shortened_but_stay_distinct(store: Store, make_result) -> None:
    base = "kafka:" + ",".join(f"broker-{i}.example.internal:9092" for i in range(20))
    k1, k2 = base + "a", base + "b"
    store.record_run("run-1", k1, PID, (), make_result(metrics={"k": 1}), ttl=60)
    store.record_run("run-2", k2, PID, (), make_result(metrics={"k": 2}), ttl=60)
    assert store.cached_result(k1, PID, ()).metrics == {"k": 1}  # type: ignore[union-attr]
    assert store.cached_result(k2, PID, ()).metrics == {"k": 2}  # type: ignore[union-attr]
    assert [r.run_id for r in store.history(k1)] == ["run-1"]


def test_purge_history_keeps_recent_runs(store: Store, make_result) -> None:
    now = dt.datetime.now(dt.UTC)
    store.record_run("old", TK, PID, (), make_result(at=now - dt.timedelta(days=40)), ttl=None)
    store.record_run("new", TK, PID, (), make_result(at=now - dt.timedelta(days=1)), ttl=None)
    assert store.purge_history(dt.timedelta(days=30)) == 1
    assert [r.run_id for r in store.history(TK)] == ["new"]
