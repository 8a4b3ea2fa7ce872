"""Replication on the fixture's primary and its standby (pg_basebackup -R, a slot of its
own): a streaming standby and its active slot stay quiet; an inactive slot, paused
replay and replay lag are named, the standby diagnosed as the target's second
endpoint."""

from __future__ import annotations

from kubestack_ai.plugins import PluginManager
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import (
    Standby,
    codes,
    diagnose,
    endpoint,
    finding,
    sql,
    target,
    wait_until,
)


def _caught_up(sb: Standby) -> bool:
    return bool(sql(sb, "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()")[0][0][0])


def test_streaming_standby_and_its_active_slot_are_quiet(
        manager: PluginManager, pg: PgServer, standby: Standby) -> None:
    wait_until(lambda: _caught_up(standby), what="the standby to catch up")
    r = diagnose(manager, target(endpoint(pg), endpoint(standby)), "replication")
    assert r.errors == {} and r.findings == []
    assert r.metrics["replication.role"] == "primary"
    assert r.metrics["replication.standbys"] == 1
    alone = diagnose(manager, target(endpoint(standby)), "replication")
    assert alone.errors == {} and alone.findings == []
    assert alone.metrics["replication.role"] == "standby"


def test_inactive_slot_named_not_the_active_one(
        manager: PluginManager, pg: PgServer, standby: Standby) -> None:
    sql(pg, "SELECT pg_create_physical_replication_slot('orphan_slot', true)")
    try:
        r = diagnose(manager, target(endpoint(pg)), "replication")
        f = finding(r, "postgres.replication.slot_inactive")
        assert [x.evidence["slot"] for x in r.findings
                if x.code == "postgres.replication.slot_inactive"] == ["orphan_slot"]
        assert f.evidence["node"] == endpoint(pg) and f.evidence["wal_status"] == "reserved"
        assert f.evidence["retained_wal_bytes"] >= 0
        assert "SELECT pg_drop_replication_slot('orphan_slot');" in f.suggestion
        assert "max_slot_wal_keep_size = '10GB'" in f.suggestion  # unlimited (-1) here
        assert f.severity.name == "WARNING"
    finally:
        sql(pg, "SELECT pg_drop_replication_slot('orphan_slot')")


def test_paused_replay_and_lag_on_the_second_endpoint(
        manager: PluginManager, pg: PgServer, standby: Standby) -> None:
    sql(standby, "SELECT pg_wal_replay_pause()")
    try:
        sql(pg, "CREATE TABLE IF NOT EXISTS repl_t (v int)", "INSERT INTO repl_t VALUES (1)")
        wait_until(lambda: not _caught_up(standby), what="WAL received and not replayed")
        wait_until(lambda: sql(pg, "SELECT replay_lsn < pg_current_wal_lsn() FROM "
                               "pg_stat_replication")[0][0][0], what="the primary to see lag")
        t = target(endpoint(pg), endpoint(standby),
                   thresholds={"replication_lag_bytes": 1, "replication_lag_seconds": 3600})
        r = diagnose(manager, t, "replication")
        assert r.errors == {}
        paused = finding(r, "postgres.replication.replay_paused")
        assert paused.evidence["node"] == endpoint(standby)
        assert paused.suggestion == f"On {endpoint(standby)}: SELECT pg_wal_replay_resume();"
        lag = finding(r, "postgres.replication.replay_lag")
        assert lag.evidence["node"] == endpoint(standby) and lag.evidence["replay_gap_bytes"] > 0
        primary_side = finding(r, "postgres.replication.standby_lag")
        assert primary_side.evidence["node"] == endpoint(pg)
        assert primary_side.evidence["standby"] == "walreceiver"
        assert primary_side.evidence["replay_lag_bytes"] > 0
    finally:
        sql(standby, "SELECT pg_wal_replay_resume()")
    wait_until(lambda: _caught_up(standby), what="the standby to catch up")
    r = diagnose(manager, target(endpoint(pg), endpoint(standby)), "replication")
    assert not {"postgres.replication.replay_paused", "postgres.replication.replay_lag"} & codes(r)


def test_unreachable_second_endpoint_is_a_finding(manager: PluginManager, pg: PgServer) -> None:
    from tests.conftest import free_port
    gone = f"127.0.0.1:{free_port()}"
    r = diagnose(manager, target(endpoint(pg), gone), "replication")
    f = finding(r, "postgres.replication.node_unreachable")
    assert f.evidence["node"] == gone and "Connection refused" in f.evidence["error"]
