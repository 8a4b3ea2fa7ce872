"""Seeded session faults on the fixture's primary, each beside a healthy look-alike
that must stay quiet: idle in transaction, a long query, a lock chain, deadlocks judged
as a rate, checkpoints requested over the window."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kubestack_ai.plugins import PluginManager, Snapshot
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import (
    codes,
    connect,
    diagnose,
    endpoint,
    finding,
    findings,
    sql,
    target,
    wait_until,
)


@pytest.fixture()
def conns(pg: PgServer) -> Iterator[list[psycopg.Connection[Any]]]:
    opened: list[psycopg.Connection[Any]] = []
    yield opened
    for c in opened:
        try:
            c.cancel_safe(timeout=2)
        except Exception:
            pass
        c.close()


def open_(pg: PgServer, conns: list[psycopg.Connection[Any]], app: str) -> psycopg.Connection[Any]:
    c = connect(pg, application_name=app)
    conns.append(c)
    return c


def test_idle_in_transaction_names_the_session_not_the_idle_one(
        manager: PluginManager, pg: PgServer, conns: list[Any]) -> None:
    stuck = open_(pg, conns, "stuck-app")
    stuck.execute("BEGIN")
    stuck.execute("SELECT 1")
    idle = open_(pg, conns, "idle-app")  # idle, no transaction: the look-alike
    idle.execute("SELECT 1")
    fresh = open_(pg, conns, "fresh-app")  # in a transaction, but only for a moment
    time.sleep(1.3)
    fresh.execute("BEGIN")
    fresh.execute("SELECT 1")
    t = target(endpoint(pg), thresholds={"idle_in_transaction_seconds": 1})
    r = diagnose(manager, t, "connection")
    f = finding(r, "postgres.connection.idle_in_transaction")
    pids = [s["pid"] for s in f.evidence["sessions"]]
    assert pids == [stuck.info.backend_pid]
    s = f.evidence["sessions"][0]
    assert s["application"] == "stuck-app" and s["user"] == "postgres" and s["idle_s"] >= 1
    assert "xact_start" in s and s["query"] == "SELECT 1"
    assert f"pg_terminate_backend({stuck.info.backend_pid})" in f.suggestion
    assert 'ALTER ROLE "postgres" SET idle_in_transaction_session_timeout' in f.suggestion
    assert r.metrics["connection.total"] >= 3
    stuck.execute("ROLLBACK")
    assert "postgres.connection.idle_in_transaction" not in codes(diagnose(manager, t, "connection"))


def test_long_query_and_lock_chain_name_pids_and_root(
        manager: PluginManager, pg: PgServer, conns: list[Any]) -> None:
    sql(pg, "DROP TABLE IF EXISTS lockt", "CREATE TABLE lockt (id int PRIMARY KEY, v int)",
        "INSERT INTO lockt VALUES (1, 0), (2, 0)")
    holder = open_(pg, conns, "holder")
    holder.execute("BEGIN")
    holder.execute("UPDATE lockt SET v = 1 WHERE id = 1")
    other = open_(pg, conns, "other-row")  # the look-alike: another row, not blocked
    other.execute("BEGIN")
    other.execute("UPDATE lockt SET v = 1 WHERE id = 2")
    waiter = open_(pg, conns, "waiter")
    sleeper = open_(pg, conns, "sleeper")
    threads = [threading.Thread(target=lambda: _quiet(waiter, "UPDATE lockt SET v = 2 WHERE id = 1")),
               threading.Thread(target=lambda: _quiet(sleeper, "SELECT pg_sleep(20)"))]
    for th in threads:
        th.start()
    wait_until(lambda: sql(pg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                           "'Lock'")[0][0][0] == 1, what="the waiter to wait")
    time.sleep(1.2)
    t = target(endpoint(pg), thresholds={"long_query_seconds": 1, "lock_wait_seconds": 1})
    r = diagnose(manager, t, "performance")
    lq = finding(r, "postgres.performance.long_queries")
    by_pid = {q["pid"]: q for q in lq.evidence["queries"]}
    assert sleeper.info.backend_pid in by_pid and by_pid[sleeper.info.backend_pid]["query"] == \
        "SELECT pg_sleep(20)"
    assert by_pid[sleeper.info.backend_pid]["application"] == "sleeper"
    lw = finding(r, "postgres.performance.lock_waits")
    assert lw.severity.name == "WARNING"
    waits = lw.evidence["waits"]
    assert [w["pid"] for w in waits] == [waiter.info.backend_pid]
    assert [b["pid"] for b in waits[0]["blocked_by"]] == [holder.info.backend_pid]
    assert waits[0]["blocked_by"][0]["application"] == "holder"
    assert [b["pid"] for b in lw.evidence["root_blockers"]] == [holder.info.backend_pid]
    assert f"pg_terminate_backend({holder.info.backend_pid})" in lw.suggestion
    assert other.info.backend_pid not in {w["pid"] for w in waits}
    holder.execute("ROLLBACK")
    other.execute("ROLLBACK")
    sleeper.cancel_safe(timeout=2)
    for th in threads:
        th.join(10)
    r = diagnose(manager, t, "performance")
    assert "postgres.performance.lock_waits" not in codes(r)


def _quiet(c: psycopg.Connection[Any], q: str) -> None:
    try:
        c.execute(q)
    except psycopg.Error:
        pass


def _history(r: Any) -> tuple[Snapshot, ...]:
    """The earlier run as storage keeps it: its metrics, at the time it ran."""
    return (Snapshot(at=r.started_at, metrics=r.metrics),)


def _deadlock(pg: PgServer) -> None:
    sql(pg, "DROP TABLE IF EXISTS dl", "CREATE TABLE dl (id int PRIMARY KEY, v int)",
        "INSERT INTO dl VALUES (1, 0), (2, 0)")
    a, b = connect(pg), connect(pg)
    try:
        a.execute("BEGIN")
        b.execute("BEGIN")
        a.execute("UPDATE dl SET v = 1 WHERE id = 1")
        b.execute("UPDATE dl SET v = 1 WHERE id = 2")
        th = threading.Thread(target=lambda: _quiet(a, "UPDATE dl SET v = 2 WHERE id = 2"))
        th.start()
        time.sleep(0.2)
        _quiet(b, "UPDATE dl SET v = 2 WHERE id = 1")
        th.join(10)
    finally:
        a.close()
        b.close()


def test_deadlocks_are_judged_as_a_rate(manager: PluginManager, pg: PgServer) -> None:
    # a server younger than the rate window has its uptime for window (issue 24): the
    # look-alike needs one older than the window, so the window is made short
    t = target(endpoint(pg), thresholds={"rate_window_seconds": 8})
    wait_until(lambda: sql(pg, "SELECT extract(epoch FROM now() - pg_postmaster_start_time())"
                           )[0][0][0] > 9, what="the server to be older than the window",
               timeout=15)
    _deadlock(pg)  # a deadlock before we look: lifetime only, the look-alike
    sql(pg, "SELECT pg_stat_force_next_flush()")
    time.sleep(1.1)
    first = diagnose(manager, t, "performance")
    assert first.metrics["counters.deadlocks"] >= 1
    assert "postgres.performance.deadlocks" not in codes(first)
    quiet = diagnose(manager, t, "performance", history=_history(first))
    assert "postgres.performance.deadlocks" not in codes(quiet)
    _deadlock(pg)
    time.sleep(1.1)  # stats are flushed at most once a second
    r = diagnose(manager, t, "performance", history=_history(first))
    f = finding(r, "postgres.performance.deadlocks")
    assert f.evidence["deadlocks_in_window"] == 1
    assert f.evidence["window_source"] == "history"


def test_requested_checkpoints_over_the_window(manager: PluginManager, pg: PgServer) -> None:
    t = target(endpoint(pg))
    first = diagnose(manager, t, "checkpoints")
    again = diagnose(manager, t, "checkpoints", history=_history(first))
    assert "postgres.checkpoints.requested_high" not in codes(again)  # none in between
    req0 = first.metrics["counters.checkpoints_req"]
    sql(pg, "CREATE TABLE IF NOT EXISTS ckp (v int)", "INSERT INTO ckp VALUES (1)", "CHECKPOINT",
        "INSERT INTO ckp VALUES (2)", "CHECKPOINT", "INSERT INTO ckp VALUES (3)", "CHECKPOINT")
    # CHECKPOINT returns before the checkpointer reports its statistics
    wait_until(lambda: sql(pg, "SELECT checkpoints_req FROM pg_stat_bgwriter")[0][0][0]
               >= req0 + 3, what="the checkpoints to be counted")
    r = diagnose(manager, t, "checkpoints", history=_history(first))
    f = finding(r, "postgres.checkpoints.requested_high")
    assert f.evidence["checkpoints_req_in_window"] == 3
    assert f.evidence["requested_pct"] == 100.0
    assert "ALTER SYSTEM SET max_wal_size = '" in f.suggestion
    assert not findings(r, "postgres.checkpoints.privilege_missing")
