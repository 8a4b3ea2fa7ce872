"""Replication on a real source + replica pair: healthy, writable, lagging, broken.

The tests run in file order on one pair: the last one breaks the replica for good.
"""

from __future__ import annotations

from kubestack_ai.plugins import PluginManager, Severity, Snapshot, Status
from kubestack_ai.plugins.models import utcnow
from tests.mysql.mysql_helpers import Instance, codes, diagnose, finding, target, wait_replica


def test_healthy_replica(manager: PluginManager, replication: tuple[Instance, Instance]) -> None:
    _, replica = replication
    r = diagnose(manager, target(replica.endpoint), "replication")
    assert r.errors == {}
    assert not [c for c in codes(r) if c.startswith("mysql.replication.")], r.findings
    assert r.status is Status.HEALTHY
    assert r.metrics["replication.role"] == "replica"
    assert r.metrics["replication.channels"] == 1
    assert r.metrics["replication.seconds_behind"] == 0
    assert r.metrics["replication.relay_log_space_bytes"] > 0


def test_source_is_not_a_replica(manager: PluginManager, replication: tuple[Instance, Instance]) -> None:
    source, _ = replication
    r = diagnose(manager, target(source.endpoint), "replication")
    assert r.metrics["replication.role"] == "source"
    assert r.findings == []


def test_writable_replica(manager: PluginManager, replication: tuple[Instance, Instance]) -> None:
    _, replica = replication
    replica.sql("SET GLOBAL read_only = OFF")
    try:
        r = diagnose(manager, target(replica.endpoint), "replication")
    finally:
        replica.sql("SET GLOBAL read_only = ON")
    f = finding(r, "mysql.replication.replica_writable")
    assert f.severity is Severity.WARNING
    assert f.evidence["read_only"] == "OFF"
    assert "SET GLOBAL read_only=ON" in f.suggestion


def test_lag_growing_across_runs(manager: PluginManager,
                                 replication: tuple[Instance, Instance]) -> None:
    source, replica = replication
    # MASTER_DELAY holds events back: Seconds_Behind_Master then really grows
    replica.sql("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 30", "START SLAVE")
    try:
        source.sql("INSERT INTO app.items VALUES (10, 10)")
        wait_replica(replica, lambda row: (row["Seconds_Behind_Master"] or 0) >= 2, timeout=15)
        t = target(replica.endpoint, thresholds={"replication_lag_warning_s": 1,
                                                 "replication_lag_critical_s": 600})
        history = (Snapshot(at=utcnow(), metrics={"replication.seconds_behind": 0}),
                   Snapshot(at=utcnow(), metrics={"replication.seconds_behind": 1}))
        r = diagnose(manager, t, "replication", history=history)
        flat = diagnose(manager, t, "replication")  # no history: over 1 s, not known to grow
    finally:
        replica.sql("STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE")
    lag = finding(r, "mysql.replication.lag")
    assert lag.severity is Severity.CRITICAL  # over the warning threshold and growing
    assert lag.evidence["growing"] is True
    assert lag.evidence["seconds_behind"] >= 2
    assert lag.evidence["history"][:2] == [0.0, 1.0]
    assert "grows across runs" in lag.title
    flat_lag = finding(flat, "mysql.replication.lag")
    assert flat_lag.severity is Severity.WARNING and flat_lag.evidence["growing"] is False
    wait_replica(replica, lambda row: row["Seconds_Behind_Master"] == 0
                 and row["Slave_SQL_Running"] == "Yes")


def test_sql_thread_broken_by_conflicting_row(manager: PluginManager,
                                              replication: tuple[Instance, Instance]) -> None:
    source, replica = replication
    replica.sql("INSERT INTO app.items VALUES (99, 0)")  # root may write despite read_only
    source.sql("INSERT INTO app.items VALUES (99, 1)")
    wait_replica(replica, lambda row: row["Slave_SQL_Running"] == "No")
    r = diagnose(manager, target(replica.endpoint), "replication")
    assert r.status is Status.CRITICAL
    f = finding(r, "mysql.replication.sql_thread_stopped")
    assert f.severity is Severity.CRITICAL
    assert f.evidence["last_sql_errno"] == 1062
    assert "Duplicate entry '99'" in f.evidence["last_sql_error"]
    assert "SQL error 1062" in f.title
    assert f.evidence["io_running"] == "Yes" and f.evidence["sql_running"] == "No"
    assert f.evidence["columns"] == "Slave_/Master_"
    assert "START REPLICA" in f.suggestion
