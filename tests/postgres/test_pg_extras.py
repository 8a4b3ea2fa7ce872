"""pg_stat_statements read when installed; a failing WAL archiver named, and quiet again
once it archives."""

from __future__ import annotations

from kubestack_ai.plugins import PluginManager
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import codes, diagnose, endpoint, finding, sql, target, wait_until


def test_top_statements_when_installed_info_when_not(manager: PluginManager, pg: PgServer) -> None:
    sql(pg, "DROP DATABASE IF EXISTS pgss", "CREATE DATABASE pgss")
    t = target(endpoint(pg), options={"database": "pgss"})
    missing = finding(diagnose(manager, t, "performance"),
                      "postgres.performance.pg_stat_statements_missing")
    assert missing.evidence == {"database": "pgss", "shared_preload_libraries": "pg_stat_statements"}
    assert missing.suggestion.endswith('then in "pgss": CREATE EXTENSION pg_stat_statements;')
    from tests.postgres.pg_helpers import connect
    with connect(pg, dbname="pgss") as c:
        c.execute("CREATE EXTENSION pg_stat_statements")
        for _ in range(3):
            c.execute("SELECT count(*) FROM generate_series(1, 200000)")
    r = diagnose(manager, t, "performance")
    assert "postgres.performance.pg_stat_statements_missing" not in codes(r) and r.errors == {}
    top = r.metrics["performance.top_statements"]
    hit = [s for s in top if s["query"] == "SELECT count(*) FROM generate_series($1, $2)"]
    assert hit and hit[0]["calls"] == 3 and hit[0]["database"] == "pgss"


def _archiver(pg: PgServer) -> tuple[int, int]:
    row = sql(pg, "SELECT archived_count, failed_count FROM pg_stat_archiver")[0][0]
    return int(row[0]), int(row[1])


def test_failing_archiver_then_archiving_again(manager: PluginManager, pg: PgServer) -> None:
    t = target(endpoint(pg))
    sql(pg, "ALTER SYSTEM SET archive_command = '/bin/false'", "SELECT pg_reload_conf()")
    try:
        failed0 = _archiver(pg)[1]
        sql(pg, "CREATE TABLE IF NOT EXISTS arch (v int)", "INSERT INTO arch VALUES (1)",
            "SELECT pg_switch_wal()")
        wait_until(lambda: _archiver(pg)[1] > failed0, what="the archiver to fail")
        f = finding(diagnose(manager, t, "durability"), "postgres.durability.archiver_failing")
        assert f.severity.name == "CRITICAL" and f.evidence["archive_mode"] == "on"
        assert f.evidence["failed_count"] > failed0 and f.evidence["last_failed_wal"]
    finally:
        sql(pg, "ALTER SYSTEM SET archive_command = '/bin/true'", "SELECT pg_reload_conf()")
    archived0 = _archiver(pg)[0]
    sql(pg, "INSERT INTO arch VALUES (2)", "SELECT pg_switch_wal()")
    wait_until(lambda: _archiver(pg)[0] > archived0, timeout=90, what="the archiver to archive")
    assert "postgres.durability.archiver_failing" not in codes(diagnose(manager, t, "durability"))
