"""Seeded schema and maintenance faults in a database of their own on the fixture's
primary, each beside a healthy look-alike that must not be named."""

from __future__ import annotations

import time

import psycopg
import pytest

from kubestack_ai.plugins import DiagnosticResult, PluginManager
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import codes, connect, diagnose, endpoint, finding, sql, target

DB = "schema_faults"


@pytest.fixture(scope="module")
def seeded(pg: PgServer) -> PgServer:
    sql(pg, f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}")
    with connect(pg, dbname=DB) as c:
        for s in [
            # invalid index: a unique index built concurrently over duplicates fails
            "CREATE TABLE dup_vals (id int PRIMARY KEY, v int)",
            "INSERT INTO dup_vals SELECT g, g % 10 FROM generate_series(1, 100) g",
            "CREATE INDEX dup_vals_ok ON dup_vals (id, v)",
            # duplicate / redundant: (a) covered by (a, b); look-alikes: unique (a),
            # partial (a) WHERE, expression lower(c)
            "CREATE TABLE redund (id int PRIMARY KEY, a int, b int, c text)",
            "CREATE INDEX redund_a ON redund (a)",
            "CREATE INDEX redund_a_b ON redund (a, b)",
            "CREATE UNIQUE INDEX redund_a_uniq ON redund (a)",
            "CREATE INDEX redund_a_part ON redund (a) WHERE b > 0",
            "CREATE INDEX redund_lower_c ON redund (lower(c))",
            # no primary key; look-alike: with one (every other table here)
            'CREATE TABLE "Events Log" (at timestamptz, what text)',
            # foreign keys: without an index and with one
            "CREATE TABLE parent (id int PRIMARY KEY)",
            "INSERT INTO parent SELECT generate_series(1, 10)",
            "CREATE TABLE child_noidx (id int PRIMARY KEY, parent_id int REFERENCES parent)",
            "CREATE TABLE child_idx (id int PRIMARY KEY, parent_id int REFERENCES parent)",
            "CREATE INDEX child_idx_parent ON child_idx (parent_id)",
            "INSERT INTO child_noidx SELECT g, 1 + g % 10 FROM generate_series(1, 200) g",
            "INSERT INTO child_idx SELECT g, 1 + g % 10 FROM generate_series(1, 200) g",
            "ANALYZE",
            # sequences: a bigint sequence feeding an integer column, near 2^31; serial
            # (its sequence as wide as its column) at the same share of its own maximum
            # is named too; bigserial at the same value is the look-alike
            "CREATE TABLE near_max (id int PRIMARY KEY)",
            "CREATE SEQUENCE near_max_id_seq AS bigint OWNED BY near_max.id",
            "ALTER TABLE near_max ALTER id SET DEFAULT nextval('near_max_id_seq')",
            "CREATE TABLE far_from_max (id bigserial PRIMARY KEY)",
            "SELECT setval('near_max_id_seq', 2000000000)",
            "SELECT setval('far_from_max_id_seq', 2000000000)",
            # autovacuum off on a table; look-alike: other storage parameters
            "CREATE TABLE no_autovac (id int PRIMARY KEY) WITH (autovacuum_enabled = false)",
            "CREATE TABLE tuned (id int PRIMARY KEY) WITH (fillfactor = 80)",
            # dead tuples: most rows deleted; look-alike: a few deleted of many
            "CREATE TABLE churn (id int PRIMARY KEY)",
            "INSERT INTO churn SELECT generate_series(1, 30000)",
            "DELETE FROM churn WHERE id > 5000",
            "CREATE TABLE steady (id int PRIMARY KEY)",
            "INSERT INTO steady SELECT generate_series(1, 30000)",
            "DELETE FROM steady WHERE id <= 100",
            "ANALYZE steady",  # the look-alike of a table changed and never analyzed
            "SELECT pg_stat_force_next_flush()",
        ]:
            c.execute(s)
        try:
            c.execute("CREATE UNIQUE INDEX CONCURRENTLY dup_vals_v ON dup_vals (v)")
        except psycopg.errors.UniqueViolation:
            pass
    time.sleep(1.1)  # table statistics are flushed at most once a second
    return pg


@pytest.fixture(scope="module")
def result(seeded: PgServer) -> DiagnosticResult:
    from kubestack_ai.plugins import PluginManager as M
    m = M()
    m.load_builtin("postgres-diagnostics")
    try:
        return diagnose(m, target(endpoint(seeded), options={"database": DB},
                                  thresholds={"fk_index_min_rows": 100}),
                        "schema", "maintenance")
    finally:
        m.stop_all()


def test_categories_read_without_errors(result: DiagnosticResult) -> None:
    assert result.errors == {}


def test_invalid_index_named_with_reindex(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.schema.invalid_index")
    assert [i["index"] for i in f.evidence["indexes"]] == ["public.dup_vals_v"]
    assert 'REINDEX INDEX CONCURRENTLY "public"."dup_vals_v";' in f.suggestion


def test_redundant_index_named_not_its_look_alikes(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.schema.duplicate_index")
    assert [(d["index"], d["covered_by"]) for d in f.evidence["indexes"]] == [
        ("public.redund_a", "public.redund_a_b")]
    assert f.suggestion == 'DROP INDEX CONCURRENTLY "public"."redund_a";'


def test_table_without_primary_key_quoted(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.schema.no_primary_key")
    assert [t["table"] for t in f.evidence["tables"]] == ["public.Events Log"]
    assert 'ALTER TABLE "public"."Events Log" ADD PRIMARY KEY' in f.suggestion


def test_fk_without_index_named_not_the_indexed_one(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.schema.fk_without_index")
    assert [(k["table"], k["columns"]) for k in f.evidence["foreign_keys"]] == [
        ("public.child_noidx", ["parent_id"])]
    assert f.suggestion.endswith('CREATE INDEX CONCURRENTLY ON "public"."child_noidx" '
                                 '("parent_id");')


def test_sequence_near_the_column_max_not_the_bigint_one(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.maintenance.sequence_near_max")
    assert [(s["sequence"], s["limited_by"]) for s in f.evidence["sequences"]] == [
        ("public.near_max_id_seq", "column near_max.id (integer)")]
    assert f.evidence["sequences"][0]["pct"] == 93.13
    assert f.severity.name == "WARNING"
    assert f.suggestion == 'ALTER TABLE "public"."near_max" ALTER COLUMN "id" TYPE bigint;'


def test_autovacuum_disabled_table_named_not_the_tuned_one(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.maintenance.autovacuum_disabled")
    assert [t["table"] for t in f.evidence["tables"]] == ["public.no_autovac"]
    assert f.suggestion == 'ALTER TABLE "public"."no_autovac" RESET (autovacuum_enabled);'


def test_dead_tuples_named_not_the_steady_table(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.maintenance.dead_tuples")
    assert [(t["table"], t["n_dead_tup"]) for t in f.evidence["tables"]] == [("public.churn", 25000)]
    assert 'VACUUM (ANALYZE, VERBOSE) "public"."churn";' in f.suggestion


def test_changed_and_never_analyzed_table_not_the_analyzed_one(result: DiagnosticResult) -> None:
    f = finding(result, "postgres.maintenance.analyze_stale")
    assert [(t["table"], t["n_mod_since_analyze"], t["since_analyze"])
            for t in f.evidence["tables"]] == [("public.churn", 55000, "never")]
    assert f.suggestion.startswith('ANALYZE (VERBOSE) "public"."churn";')


def test_quiet_on_the_healthy_parts(result: DiagnosticResult) -> None:
    assert not {"postgres.maintenance.xid_wraparound", "postgres.maintenance.mxid_wraparound",
                "postgres.maintenance.prepared_xacts", "postgres.maintenance.table_bloat",
                "postgres.schema.unused_index"} & codes(result)


def test_wraparound_age_against_a_lowered_threshold(manager: PluginManager, seeded: PgServer) -> None:
    r = diagnose(manager, target(endpoint(seeded), options={"database": DB},
                                 thresholds={"xid_age_warning": 1}), "maintenance")
    f = [x for x in r.findings if x.code == "postgres.maintenance.xid_wraparound"
         and x.evidence["database"] == DB][0]
    assert f.evidence["freeze_max_age"] == 200000000
    assert f.evidence["left_before_hard_limit"] == 2**31 - 1 - f.evidence["xid_age"]
    assert "VACUUM (FREEZE, VERBOSE)" in f.suggestion


def test_orphaned_prepared_transaction(manager: PluginManager, seeded: PgServer) -> None:
    with connect(seeded, dbname=DB) as c:
        c.execute("BEGIN")
        c.execute("INSERT INTO tuned VALUES (1)")
        c.execute("PREPARE TRANSACTION 'ksa-orphan'")
    try:
        time.sleep(1.1)
        t = target(endpoint(seeded), options={"database": DB},
                   thresholds={"prepared_xact_warning_seconds": 1})
        f = finding(diagnose(manager, t, "maintenance"), "postgres.maintenance.prepared_xacts")
        assert [(x["gid"], x["database"]) for x in f.evidence["prepared"]] == [("ksa-orphan", DB)]
        assert f"in \"{DB}\": ROLLBACK PREPARED 'ksa-orphan';" in f.suggestion
    finally:
        with connect(seeded, dbname=DB) as c:
            c.execute("ROLLBACK PREPARED 'ksa-orphan'")


def test_unused_index_named_not_the_used_one(manager: PluginManager, seeded: PgServer) -> None:
    sql(seeded, "DROP DATABASE IF EXISTS unused_idx", "CREATE DATABASE unused_idx")
    with connect(seeded, dbname="unused_idx") as c:
        c.execute("CREATE TABLE ev (id int PRIMARY KEY, kind int, at int)")
        c.execute("INSERT INTO ev SELECT g, g % 100, g FROM generate_series(1, 20000) g")
        c.execute("CREATE INDEX ev_kind ON ev (kind)")
        c.execute("CREATE INDEX ev_at ON ev (at)")
        c.execute("ANALYZE ev")
        for i in range(60):  # ev_at is used; ev_kind never
            c.execute(f"SELECT * FROM ev WHERE at = {i}").fetchall()
        c.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(1.1)
    t = target(endpoint(seeded), options={"database": "unused_idx"},
               thresholds={"unused_index_min_bytes": 100_000})
    f = finding(diagnose(manager, t, "schema"), "postgres.schema.unused_index")
    assert [i["index"] for i in f.evidence["indexes"]] == ["public.ev_kind"]  # not ev_at, not the PK
    assert f.evidence["indexes"][0]["scans"] == 0 and f.evidence["stats_reset"] is None
    assert f.severity.name == "INFO"
    assert 'DROP INDEX CONCURRENTLY "public"."ev_kind";' in f.suggestion


def test_bloated_index_named_not_the_rebuilt_one(manager: PluginManager, seeded: PgServer) -> None:
    sql(seeded, "DROP DATABASE IF EXISTS bloat", "CREATE DATABASE bloat")
    with connect(seeded, dbname="bloat") as c:
        for tbl in ("shrunk", "rebuilt"):
            c.execute(f"CREATE TABLE {tbl} (id int PRIMARY KEY, v bigint)")
            c.execute(f"INSERT INTO {tbl} SELECT g, g FROM generate_series(1, 200000) g")
            c.execute(f"CREATE INDEX {tbl}_v ON {tbl} (v)")
            c.execute(f"DELETE FROM {tbl} WHERE id > 20000")
            c.execute(f"VACUUM ANALYZE {tbl}")
        c.execute("REINDEX TABLE rebuilt")  # the look-alike: the same rows, indexes rebuilt
        c.execute("VACUUM ANALYZE rebuilt")
    t = target(endpoint(seeded), options={"database": "bloat"},
               thresholds={"bloat_warning_bytes": 2 * 1024 * 1024})
    r = diagnose(manager, t, "maintenance")
    assert r.errors == {}
    f = finding(r, "postgres.maintenance.index_bloat")
    assert sorted(i["index"] for i in f.evidence["indexes"]) == ["public.shrunk_pkey", "public.shrunk_v"]
    assert all(i["size_bytes"] > 4 * i["expected_bytes"] for i in f.evidence["indexes"])
    assert 'REINDEX INDEX CONCURRENTLY "public"."shrunk_v";' in f.suggestion


def test_further_databases_each_named(manager: PluginManager, seeded: PgServer) -> None:
    t = target(endpoint(seeded), options={"database": "postgres", "databases": [DB, "no_such_db"]})
    r = diagnose(manager, t, "schema", "maintenance")
    # other tests' objects may live in "postgres": pick this database's findings
    f = [x for x in r.findings if x.code == "postgres.schema.invalid_index"
         and x.evidence["database"] == DB][0]
    assert [i["index"] for i in f.evidence["indexes"]] == ["public.dup_vals_v"]
    assert f.suggestion.startswith(f'In "{DB}": They cost writes')
    assert {x.evidence["database"] for x in r.findings
            if x.code == "postgres.maintenance.sequence_near_max"} == {DB}
    assert r.errors["schema"].startswith("database no_such_db: ")
    assert 'database "no_such_db" does not exist' in r.errors["schema"]
