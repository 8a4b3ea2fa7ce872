"""The view is the fleet: the targets the fleet file declares (``set_fleet``, written by
the beat) are the fleet; a one-off run of anything else is shown apart and ages out; a
target that leaves the fleet leaves the view and ``/metrics`` (its history stays);
staleness follows the fleet's interval; the counts follow the filters."""

from __future__ import annotations

import datetime as dt

import pytest

from kubestack_ai.plugins.models import Finding, Severity, Status
from kubestack_ai.storage import FleetMember, StorageError, Store

from .storage_factories import T0, result

PID = "redis-diagnostics"
MIN = dt.timedelta(minutes=1)


def _run(store: Store, rid: str, tk: str, at: dt.datetime,
         status: Status = Status.HEALTHY) -> None:
    findings = [Finding(code="redis.memory.oom", category="memory", severity=Severity.CRITICAL,
                        title="Out of memory", evidence={"used": 1}, suggestion="Raise maxmemory.")
                ] if status is Status.CRITICAL else None
    assert store.record_run(rid, tk, PID, (), result(at=at, status=status, findings=findings),
                            ttl=None)


def _member(key: str, interval: float = 60.0, endpoints: tuple[str, ...] = ()) -> FleetMember:
    return FleetMember(key, key.split(":", 1)[0], endpoints or (f"{key}:1",), interval)


def test_removed_target_leaves_the_view_and_metrics_but_keeps_its_history(store: Store) -> None:
    store.set_fleet([_member("redis:a"), _member("redis:b")])
    _run(store, "a1", "redis:a", T0, Status.CRITICAL)
    _run(store, "b1", "redis:b", T0)
    now = T0 + MIN
    assert store.fleet_counts(now).total == 2
    assert store.set_fleet([_member("redis:b")]) == ["redis:a"]
    assert [t.target_key for t in store.all_targets()] == ["redis:b"]
    assert [r[0] for r in store.metric_rows()] == ["redis:b"]
    assert store.fleet_counts(now).total == 1
    assert store.targets_at_least("critical") == []
    assert store.target("redis:a") is None
    assert [r.run_id for r in store.history("redis:a")] == ["a1"]  # history stays


def test_one_off_runs_are_shown_apart(store: Store) -> None:
    store.set_fleet([_member("redis:a")])
    _run(store, "a1", "redis:a", T0)
    _run(store, "x1", "redis:127.0.0.1:6380", T0, Status.CRITICAL)  # a mistyped port
    now = T0 + MIN
    counts, rows, total = store.fleet_page(now=now)
    assert (counts.total, [r.target_key for r in rows], total) == (1, ["redis:a"], 1)
    assert counts.by_status["critical"] == 0
    counts, rows, total = store.fleet_page(now=now, adhoc=True)
    assert [r.target_key for r in rows] == ["redis:127.0.0.1:6380"] and total == 1
    assert counts.by_status["critical"] == 1
    assert [t.target_key for t in store.all_targets()] == ["redis:a"]  # notifier, /metrics
    assert store.target("redis:127.0.0.1:6380") is not None  # its own page still works


def test_without_a_declared_fleet_every_target_is_shown(store: Store) -> None:
    _run(store, "a1", "redis:a", T0)
    _run(store, "x1", "redis:x", T0)
    assert store.fleet_counts(T0).total == 2
    assert store.fleet_page(now=T0, adhoc=True)[2] == 0


def test_one_off_targets_age_out_and_fleet_targets_do_not(store: Store) -> None:
    store.set_fleet([_member("redis:a")])
    _run(store, "a1", "redis:a", T0)
    _run(store, "x1", "redis:x", T0)
    _run(store, "y1", "redis:y", T0 + 10 * MIN)
    assert store.prune_adhoc(older_than=dt.timedelta(minutes=5), now=T0 + 11 * MIN) == 1
    assert store.target("redis:x") is None
    assert store.target("redis:y") is not None and store.target("redis:a") is not None


def test_forget_a_one_off_target(store: Store) -> None:
    store.set_fleet([_member("redis:a")])
    _run(store, "a1", "redis:a", T0)
    _run(store, "x1", "redis:x", T0)
    _run(store, "x2", "redis:x", T0 + MIN)
    assert store.forget("redis:x") == 2
    assert store.target("redis:x") is None and store.history("redis:x") == []
    assert store.forget("redis:x") == 0
    with pytest.raises(StorageError, match=r"^redis:a is in the fleet: remove it from the fleet "
                                           r"file first"):
        store.forget("redis:a")


def test_stale_follows_the_fleet_interval(store: Store) -> None:
    store.set_fleet([_member("redis:a", interval=60), _member("redis:b", interval=600)])
    _run(store, "a1", "redis:a", T0)  # one run only: stale after twice its interval
    _run(store, "b1", "redis:b", T0)
    _run(store, "b2", "redis:b", T0 + dt.timedelta(seconds=4))  # two runs by hand, 4 s apart
    a, b = store.target("redis:a"), store.target("redis:b")
    assert a is not None and b is not None
    assert a.stale_after == T0 + 2 * MIN
    assert b.stale_after == T0 + dt.timedelta(seconds=4) + 20 * MIN
    now = T0 + 3 * MIN
    assert [t.target_key for t in store.fleet_targets(status="stale", now=now)[0]] == ["redis:a"]
    # a one-off target is not scheduled: never stale
    _run(store, "x1", "redis:x", T0)
    _run(store, "x2", "redis:x", T0 + dt.timedelta(seconds=4))
    x = store.target("redis:x")
    assert x is not None and not x.is_stale(T0 + dt.timedelta(days=3))


def test_count_cards_count_what_the_filters_show(store: Store) -> None:
    store.set_fleet([_member(k) for k in ("redis:c1", "redis:c2", "redis:h1", "mysql:c3")])
    _run(store, "1", "redis:c1", T0, Status.CRITICAL)
    _run(store, "2", "redis:c2", T0, Status.CRITICAL)
    _run(store, "3", "redis:h1", T0)
    _run(store, "4", "mysql:c3", T0, Status.CRITICAL)
    now = T0 + MIN
    counts, rows, total = store.fleet_page(type="mysql", now=now)
    assert counts.by_status["critical"] == 1 and counts.by_status["healthy"] == 0
    assert total == 1 and counts.total == 4  # the heading: the whole fleet
    counts, rows, total = store.fleet_page(status="critical", now=now)
    assert counts.by_type == {"mysql": 1, "redis": 2} and total == 3
    counts, rows, total = store.fleet_page(text="c", now=now)
    assert counts.by_status["critical"] == 3 and counts.by_status["healthy"] == 0


def test_a_fleet_endpoint_names_its_target(store: Store) -> None:
    store.set_fleet([_member("redis:local-redis", endpoints=("127.0.0.1:6379",)),
                     _member("mysql:db", endpoints=("127.0.0.1:3306",))])
    assert store.fleet_key_for("redis", ("127.0.0.1:6379",)) == "redis:local-redis"
    assert store.fleet_key_for("redis", ("localhost:6379",)) == "redis:local-redis"
    assert store.fleet_key_for("mysql", ("127.0.0.1:6379",)) is None
    assert store.fleet_key_for("redis", ("127.0.0.1:6380",)) is None


def test_trends_metric_points_and_status_strips(store: Store) -> None:
    """Issue 25.2: the key metrics of a target over time, with its findings, and the
    worst status per hour of the last 24 for the front page's strip."""
    now = T0 + dt.timedelta(hours=24)
    for i, status in enumerate((Status.HEALTHY, Status.CRITICAL, Status.HEALTHY)):
        at = now - dt.timedelta(hours=3 - i, minutes=30)
        assert store.record_run(f"m{i}", "redis:a", PID, (), result(
            at=at, status=status, metrics={"used_memory": 1000 * (i + 1), "role": "master"},
            findings=[Finding(code="redis.memory.oom", category="memory",
                              severity=Severity.CRITICAL, title="Out of memory",
                              evidence={"used": 1}, suggestion="Raise maxmemory.")]
            if status is Status.CRITICAL else None), ttl=None)
    _run(store, "m-in-the-same-hour", "redis:a", now - dt.timedelta(hours=1, minutes=10))
    points = store.metric_points("redis:a", ["used_memory", "hit_rate"], since=T0)
    assert [p.values for p in points] == [{"used_memory": 1000}, {"used_memory": 2000},
                                          {"used_memory": 3000}, {}]
    assert points[1].findings == (("critical", "redis.memory.oom"),)
    strips = store.status_strips(["redis:a", "redis:none"], now=now)
    assert strips["redis:none"] == [None] * 24
    assert strips["redis:a"][-4:] == ["healthy", "critical", "healthy", None]
    assert strips["redis:a"][:20] == [None] * 20
