"""Actions: whitelisted, the dangerous ones allowed by name, validated, audited; each dry
run lists exactly what would be touched, and touches nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from kubestack_ai.plugins import ActionRefusedError, ConfigError, PluginManager
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import connect, endpoint, sql, target


@pytest.fixture()
def audited(manager: PluginManager) -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    manager.audit_hooks.append(records.append)
    yield records
    manager.audit_hooks.remove(records.append)


def _alive(pg: PgServer, pid: int) -> bool:
    return bool(sql(pg, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")[0][0][0])


def test_terminate_idle_in_transaction_dry_run_then_for_real(
        manager: PluginManager, pg: PgServer, audited: list[dict[str, Any]]) -> None:
    stuck = connect(pg, application_name="stuck")
    stuck.execute("BEGIN")
    stuck.execute("SELECT 1")
    busy = connect(pg, application_name="in-xact-fresh")  # the look-alike: just began
    try:
        time.sleep(1.2)
        busy.execute("BEGIN")
        busy.execute("SELECT 1")
        t = target(endpoint(pg))
        params = {"idle_in_transaction_seconds": 1}
        dry = manager.execute(t, "terminate_backend", params, dry_run=True)
        assert dry.error is None, dry.error
        assert [b["pid"] for b in dry.value["would_touch"]] == [stuck.info.backend_pid]
        assert dry.value["would_touch"][0]["application"] == "stuck"
        assert _alive(pg, stuck.info.backend_pid)
        done = manager.execute(t, "terminate_backend", params)
        assert [b["pid"] for b in done.value["touched"]] == [stuck.info.backend_pid]
        time.sleep(0.2)
        assert not _alive(pg, stuck.info.backend_pid) and _alive(pg, busy.info.backend_pid)
        assert audited[-1]["action"] == "terminate_backend" and audited[-1]["ok"] is True
    finally:
        stuck.close()
        busy.close()


def test_cancel_query_by_pid(manager: PluginManager, pg: PgServer) -> None:
    import threading

    c = connect(pg)
    errors: list[str] = []

    def run() -> None:
        try:
            c.execute("SELECT pg_sleep(20)")
        except psycopg.errors.QueryCanceled as e:
            errors.append(type(e).__name__)

    th = threading.Thread(target=run)
    th.start()
    try:
        time.sleep(0.5)
        out = manager.execute(target(endpoint(pg)), "cancel_query", {"pid": c.info.backend_pid})
        assert [b["pid"] for b in out.value["touched"]] == [c.info.backend_pid]
        th.join(5)
        assert errors == ["QueryCanceled"]
    finally:
        c.close()


def test_a_filter_is_required(manager: PluginManager, pg: PgServer) -> None:
    out = manager.execute(target(endpoint(pg)), "terminate_backend", {"user": "postgres"})
    assert isinstance(out.error, ConfigError)
    assert str(out.error) == ("terminate_backend: give pid, idle_in_transaction_seconds or "
                              "min_seconds (nothing is touched without one)")


def test_drop_slot_is_dangerous_refuses_active_and_dry_runs(
        manager: PluginManager, pg: PgServer, standby: Any) -> None:
    sql(pg, "SELECT pg_create_physical_replication_slot('drop_me', true)")
    try:
        t = target(endpoint(pg))
        refused = manager.execute(t, "drop_replication_slot", {"slot": "drop_me"})
        assert isinstance(refused.error, ActionRefusedError)
        assert "allow it by name" in str(refused.error)
        allowed = target(endpoint(pg), allow_actions=["drop_replication_slot"])
        active = manager.execute(allowed, "drop_replication_slot", {"slot": "standby_1"})
        assert str(active.error) == ("drop_replication_slot: slot 'standby_1' is active (its "
                                     "consumer is connected): stop the consumer first")
        dry = manager.execute(allowed, "drop_replication_slot", {"slot": "drop_me"}, dry_run=True)
        assert dry.value["would_drop"]["slot_name"] == "drop_me"
        assert sql(pg, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'drop_me'"
                   )[0][0][0] == 1
        done = manager.execute(allowed, "drop_replication_slot", {"slot": "drop_me"})
        assert done.error is None and done.value["dropped"]["slot_name"] == "drop_me"
    finally:
        sql(pg, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = 'drop_me'")


def test_vacuum_and_reindex_only_what_they_name(manager: PluginManager, pg: PgServer) -> None:
    sql(pg, "DROP TABLE IF EXISTS act_t", 'CREATE TABLE act_t (id int PRIMARY KEY, v int)',
        "INSERT INTO act_t SELECT g, g % 3 FROM generate_series(1, 30) g")
    with connect(pg) as c:
        try:
            c.execute("CREATE UNIQUE INDEX CONCURRENTLY act_t_v ON act_t (v)")
        except psycopg.errors.UniqueViolation:
            pass
    t = target(endpoint(pg), allow_actions=["reindex_concurrently"])
    dry = manager.execute(t, "vacuum_analyze", {"table": "public.act_t"}, dry_run=True)
    assert dry.value["statement"] == 'VACUUM (ANALYZE) "public"."act_t"'
    done = manager.execute(t, "vacuum_analyze", {"table": "act_t"})
    assert done.error is None
    assert sql(pg, "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = "
               "'act_t'")[0][0][0]
    valid = manager.execute(t, "reindex_concurrently", {"index": "act_t_pkey"})
    assert str(valid.error) == ("reindex_concurrently: index 'act_t_pkey' is valid: only an "
                                "invalid index is rebuilt by this action")
    dry = manager.execute(t, "reindex_concurrently", {"index": "public.act_t_v"}, dry_run=True)
    assert dry.value["statement"] == 'REINDEX INDEX CONCURRENTLY "public"."act_t_v"'
    missing = manager.execute(t, "vacuum_analyze", {"table": "no_such_table"})
    assert str(missing.error) == "no table named 'no_such_table' (give schema.name)"
