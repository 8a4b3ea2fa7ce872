"""The fleet's read side: the latest row per target kept by record_run, counts, filters,
staleness, finding spans, and the backfill of the latest table from history."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from kubestack_ai.plugins.models import Finding, Severity, Status
from kubestack_ai.storage import Store
from kubestack_ai.storage._fleet import backfill

from .storage_factories import T0, result

PID = "redis-diagnostics"
MIN = dt.timedelta(minutes=1)


def _crit(code: str = "redis.memory.oom") -> Finding:
    return Finding(code=code, category="memory", severity=Severity.CRITICAL,
                   title="Out of memory", evidence={"used": 1}, suggestion="Raise maxmemory.")


def _run(store: Store, rid: str, tk: str, at: dt.datetime, status: Status = Status.HEALTHY,
         findings: list[Finding] | None = None, outcome: str = "completed") -> None:
    assert store.record_run(rid, tk, PID, (), result(at=at, status=status, findings=findings,
                                                     outcome=outcome), ttl=None)


def test_latest_row_follows_the_newest_run_and_keeps_status_since(store: Store) -> None:
    tk = "redis:a"
    _run(store, "r1", tk, T0)
    _run(store, "r2", tk, T0 + MIN, Status.CRITICAL, [_crit()])
    _run(store, "r3", tk, T0 + 2 * MIN, Status.CRITICAL, [_crit()])
    _run(store, "old", tk, T0 - MIN, Status.WARNING)  # late arrival: history only
    t = store.target(tk)
    assert t is not None
    assert (t.run_id, t.status, t.type, t.name) == ("r3", "critical", "redis", "a")
    assert t.status_since == T0 + MIN  # critical since r2, not r3
    assert t.status_runs == 2
    assert t.worst_code == "redis.memory.oom" and t.worst_title == "Out of memory"
    assert t.findings[0]["suggestion"] == "Raise maxmemory."
    assert t.runs == {"completed": 4, "timed_out": 0, "killed": 0, "failed": 0}
    # stale after twice the observed interval (1 min) past the last run
    assert t.stale_after == T0 + 4 * MIN
    assert t.is_stale(T0 + 5 * MIN) and not t.is_stale(T0 + 3 * MIN)
    assert t.shown_status(T0 + 5 * MIN) == "stale"


def test_counts_filters_and_stale_are_shown_status(store: Store) -> None:
    now = T0 + 10 * MIN
    for name, status in (("h1", Status.HEALTHY), ("w1", Status.WARNING),
                         ("c1", Status.CRITICAL)):
        _run(store, f"{name}-1", f"redis:{name}", now - 2 * MIN, status)
        _run(store, f"{name}-2", f"redis:{name}", now - MIN, status)
    # healthy, but its last run was 8 min ago with a 1 min interval
    _run(store, "s-1", "mysql:db_1", T0, Status.HEALTHY)
    _run(store, "s-2", "mysql:db_1", T0 + MIN, Status.HEALTHY)
    counts = store.fleet_counts(now)
    assert counts.by_status == {"critical": 1, "warning": 1, "unknown": 0, "healthy": 1,
                                "stale": 1}
    assert counts.by_type == {"mysql": 1, "redis": 3} and counts.total == 4
    rows, total = store.fleet_targets(now=now)
    assert [r.name for r in rows] == ["c1", "w1", "db_1", "h1"] and total == 4  # worst first
    assert [r.name for r in store.fleet_targets(status="healthy", now=now)[0]] == ["h1"]
    assert [r.name for r in store.fleet_targets(status="stale", now=now)[0]] == ["db_1"]
    assert [r.name for r in store.fleet_targets(type="mysql", now=now)[0]] == ["db_1"]
    assert [r.name for r in store.fleet_targets(text="1", type="redis", now=now)[0]] == [
        "c1", "w1", "h1"]
    assert store.fleet_targets(text="b_", now=now)[0][0].name == "db_1"
    assert store.fleet_targets(text="%", now=now) == ([], 0)  # a wildcard is literal
    # the page the web view reads in one transaction agrees, whichever filter decides
    for kw in ({}, {"status": "stale"}, {"status": "healthy"}, {"type": "redis"},
               {"text": "1"}, {"status": "warning", "type": "mysql"}):
        counts2, rows2, total2 = store.fleet_page(now=now, **kw)  # type: ignore[arg-type]
        assert counts2.total == counts.total  # the cards follow the filters (test_storage_members)
        assert (rows2, total2) == store.fleet_targets(now=now, **kw), kw  # type: ignore[arg-type]
    page, total = store.fleet_targets(limit=2, offset=2, now=now)
    assert [r.name for r in page] == ["db_1", "h1"] and total == 4


def test_finding_spans_new_ongoing_resolved(store: Store) -> None:
    tk = "redis:a"
    gone = _crit("redis.memory.gone")
    _run(store, "r1", tk, T0, Status.CRITICAL, [gone])
    _run(store, "r2", tk, T0 + MIN, Status.CRITICAL, [_crit(), gone])
    _run(store, "r3", tk, T0 + 2 * MIN, Status.CRITICAL, [_crit()])
    _run(store, "r4", tk, T0 + 3 * MIN, Status.CRITICAL,
         [_crit(), _crit("redis.memory.fresh")], outcome="completed")
    _run(store, "r5", tk, T0 + 4 * MIN, Status.UNKNOWN, outcome="failed")  # not a verdict
    spans = {s.code: s for s in store.finding_spans(tk)}
    assert spans["redis.memory.fresh"].state == "new"
    assert spans["redis.memory.oom"].state == "ongoing"
    assert spans["redis.memory.oom"].first_seen == T0 + MIN
    assert spans["redis.memory.gone"].state == "resolved"
    assert spans["redis.memory.gone"].last_seen == T0 + MIN
    runs = store.run_summaries(tk, limit=2)
    assert [(r.run_id, r.outcome) for r in runs] == [("r5", "failed"), ("r4", "completed")]
    assert store.target(tk).runs["failed"] == 1  # type: ignore[union-attr]


def test_backfill_from_history(store: Store) -> None:
    _run(store, "r1", "redis:a", T0)
    _run(store, "r2", "redis:a", T0 + MIN, Status.CRITICAL, [_crit()])
    _run(store, "r3", "redis:b", T0, Status.WARNING)
    before = {k: store.target(k) for k in ("redis:a", "redis:b")}
    with store.engine.begin() as c:
        c.execute(text("DELETE FROM ksa_target_latest"))
        assert backfill(c) == 2
    after = {k: store.target(k) for k in ("redis:a", "redis:b")}
    for k in before:
        assert before[k] is not None and after[k] is not None
        assert before[k].__class__ is after[k].__class__
        assert (after[k].run_id, after[k].status, after[k].stale_after, after[k].runs) == (  # type: ignore[union-attr]
            before[k].run_id, before[k].status, before[k].stale_after, before[k].runs)
        assert after[k].status_runs == 1  # type: ignore[union-attr]  # from the last two runs  # type: ignore[union-attr]
