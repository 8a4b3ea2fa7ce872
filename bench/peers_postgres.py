# ruff: noqa: E501 (the alert rules are quoted verbatim, one line each)
"""Side by side, per PostgreSQL scenario of issue 23: what check_postgres, the
awesome-prometheus-alerts rules over postgres_exporter (evaluated by a real Prometheus),
and PgHero's checks flag, and what postgres-diagnostics flags.

    .venv/bin/python bench/peers_postgres.py            # a Markdown table on stdout

Starts a PostgreSQL 15 primary and a standby of its own (initdb, pg_basebackup -R with a
slot; free loopback ports, stopped at the end), postgres_exporter 0.11 on the primary and
a Prometheus 2.42 scraping it every second with the rules below (their ``for:`` dropped
so that a scenario of seconds can fire them). Each scenario seeds its fault or its
healthy look-alike, waits for two scrapes and evaluations, and asks every tool.

- check_postgres 2.25 (Debian check-postgres): the actions that concern the scenario,
  their non-OK line.
- rules: awesome-prometheus-alerts ``postgres-exporter.yml`` (too many connections,
  deadlocks, rollback rate, dead tuples, unused slot) and the postgres_mixin's
  (connections, slow queries, cache hit ratio, rollbacks, deadlocks, unused slot, dead
  tuples, requested checkpoints); an alert is listed when it fires during the scenario
  and did not before it.
- PgHero: Ruby, not installable here; its checks applied as its source does
  (``lib/pghero/methods``): long running queries (state <> 'idle', older than
  long_running_query_sec), blocked queries, invalid indexes, duplicate indexes (its
  covering rule), sequence danger (> 0.9 of the column type's maximum), replication lag,
  inactive replication slots (its dashboard check).
- ours: ``PluginManager.diagnose``, as ``ksa diagnose`` runs it (the INFO that
  pg_stat_statements is not installed, the same in every row, left out).

Durations are scaled for every tool alike to keep the run short: 2 s where the tools
say 60 s (long queries, idle in transaction, lock waits); the scenario says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager, Snapshot  # noqa: E402
from tests.conftest import free_port, port_open  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402
from tests.postgres.pg_helpers import Standby, start_primary  # noqa: E402

# the same in every scenario, not about it
NOT_SHOWN = ("privilege_missing", "pg_stat_statements_missing")
SCALED = 2  # seconds, for every tool, where they say 60
RULES = """groups:
- name: awesome-prometheus-alerts postgres-exporter, for dropped
  rules:
  - alert: PostgresqlTooManyConnections
    expr: sum by (instance, job, server) (pg_stat_activity_count) > min by (instance, job, server) (pg_settings_max_connections * 0.8)
  - alert: PostgresqlDeadLocks
    expr: increase(pg_stat_database_deadlocks{datname!~"template.*|postgres"}[1m]) > 5
  - alert: PostgresqlHighRollbackRate
    expr: sum by (namespace,datname) ((rate(pg_stat_database_xact_rollback{datname!~"template.*|postgres",datid!="0"}[3m])) / ((rate(pg_stat_database_xact_rollback{datname!~"template.*|postgres",datid!="0"}[3m])) + (rate(pg_stat_database_xact_commit{datname!~"template.*|postgres",datid!="0"}[3m])))) > 0.02
  - alert: PostgresqlUnusedReplicationSlot
    expr: pg_replication_slots_active == 0
  - alert: PostgresqlTooManyDeadTuples
    expr: ((pg_stat_user_tables_n_dead_tup > 10000) / (pg_stat_user_tables_n_live_tup + pg_stat_user_tables_n_dead_tup)) >= 0.1
- name: postgres_mixin (prometheus-community/postgres_exporter), for dropped, selectors dropped
  rules:
  - alert: PostgreSQLMaxConnectionsReached
    expr: sum by (instance) (pg_stat_activity_count) >= sum by (instance) (pg_settings_max_connections) - sum by (instance) (pg_settings_superuser_reserved_connections)
  - alert: PostgreSQLHighConnections
    expr: sum by (instance) (pg_stat_activity_count) > (sum by (instance) (pg_settings_max_connections) - sum by (instance) (pg_settings_superuser_reserved_connections)) * 0.8
  - alert: PostgreSQLSlowQueries
    expr: avg by (datname) (rate(pg_stat_activity_max_tx_duration[2m])) > 2 * 60
  - alert: PostgreSQLCacheHitRatio
    expr: avg by (datname) (rate(pg_stat_database_blks_hit[5m]) / (rate(pg_stat_database_blks_hit[5m]) + rate(pg_stat_database_blks_read[5m]))) < 0.98
  - alert: PostgresHasTooManyRollbacks
    expr: avg without(pod, instance) (rate(pg_stat_database_xact_rollback[5m]) / (rate(pg_stat_database_xact_commit[5m]) + rate(pg_stat_database_xact_rollback[5m]))) > 0.10
  - alert: PostgresHasHighDeadLocks
    expr: max without(pod, instance) (rate(pg_stat_database_deadlocks[5m]) * 60) > 5
  - alert: PostgresHasReplicationSlotUsed
    expr: pg_replication_slots_active{} == 0
  - alert: PostgresHasTooManyDeadTuples
    expr: (sum without(relname) (pg_stat_user_tables_n_dead_tup) > 10000) / ((sum without(relname) (pg_stat_user_tables_n_live_tup) + sum without(relname)(pg_stat_user_tables_n_dead_tup)) > 0) >= 0.1
  - alert: PostgresTooManyCheckpointsRequested
    expr: rate(pg_stat_bgwriter_checkpoints_timed_total[5m]) / (rate(pg_stat_bgwriter_checkpoints_timed_total[5m]) + rate(pg_stat_bgwriter_checkpoints_req_total[5m])) < 0.5
"""


def conn(port: int, db: str = "postgres", **kw: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db,
                           autocommit=True, **kw)


def sql(port: int, *stmts: str, db: str = "postgres") -> list[Any]:
    out = []
    with conn(port, db) as c:
        for s in stmts:
            cur = c.execute(s)
            out.append(cur.fetchall() if cur.description else None)
    return out


def cut(s: str, n: int = 110) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


class Peers:
    def __init__(self, primary: PgServer, standby: Standby, tmp: Path) -> None:
        self.p, self.s = primary, standby
        self.manager = PluginManager()
        self.manager.load_builtin("postgres-diagnostics")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.exporter = free_port()
        env = {"DATA_SOURCE_NAME": f"postgresql://postgres@127.0.0.1:{primary.port}/postgres?"
               "sslmode=disable", "PATH": "/usr/bin:/bin"}
        self.procs.append(subprocess.Popen(
            ["prometheus-postgres-exporter", f"--web.listen-address=127.0.0.1:{self.exporter}",
             "--auto-discover-databases"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        self.prom = free_port()
        (tmp / "rules.yml").write_text(RULES)
        (tmp / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [rules.yml]\n"
            f"scrape_configs: [{{job_name: pg, static_configs: [{{targets: ['127.0.0.1:{self.exporter}']}}]}}]\n")
        self.procs.append(subprocess.Popen(
            ["prometheus", f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{self.prom}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp / "prometheus.log", "wb")))  # noqa: SIM115
        for _ in range(200):
            if port_open("127.0.0.1", self.prom) and port_open("127.0.0.1", self.exporter):
                break
            time.sleep(0.05)
        time.sleep(3)
        self.rows: list[tuple[str, str, str, str, str]] = []

    def close(self) -> None:
        self.manager.stop_all()
        for p in self.procs:
            p.terminate()
            p.wait(10)

    # -- the tools ------------------------------------------------------------------------

    def alerts(self) -> set[str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.prom}/api/v1/alerts", timeout=10) as r:
            data = json.load(r)["data"]["alerts"]
        out = set()
        for a in data:
            if a["state"] == "firing":
                lab = a["labels"]
                what = lab.get("slot_name") or lab.get("relname") or lab.get("datname") or ""
                out.add(f"{lab['alertname']} {what}".strip())
        return out

    def check_postgres(self, port: int, db: str, *actions: tuple[str, ...]) -> list[str]:
        lines = []
        for action, *args in actions:
            # hot_standby_delay names both servers itself (--dbhost/--dbport lists)
            where = [] if any(a.startswith("--dbport") for a in args) else [
                "-H", "127.0.0.1", "-p", str(port)]
            r = subprocess.run(["check_postgres", f"--action={action}", *where,
                                "-u", "postgres", f"--db={db}", *args],
                               capture_output=True, text=True, timeout=120)
            first = (r.stdout or r.stderr).strip().splitlines()[:1]
            if first and " OK:" not in first[0]:
                lines.append(cut(first[0]))
        return lines

    def ours(self, *categories: str, endpoints: tuple[str, ...] | None = None, db: str = "postgres",
             thresholds: dict[str, float] | None = None,
             history: tuple[Snapshot, ...] = ()) -> tuple[list[str], Any]:
        t = MiddlewareTarget(type="postgres", name=f"peers-{db}",
                             endpoints=endpoints or (f"127.0.0.1:{self.p.port}",),
                             options={"database": db}, thresholds=thresholds or {})
        r = self.manager.diagnose(t, DiagnoseOptions(categories=categories, history=history),
                                  timeout=30)
        lines = [cut(f"{f.severity.name} {f.code.removeprefix('postgres.')}: {f.title}")
                 for f in r.findings if not f.code.endswith(NOT_SHOWN)]
        return lines, r

    # -- PgHero's checks, as lib/pghero/methods has them ------------------------------------

    def pghero(self, port: int, db: str, *checks: str) -> list[str]:
        out: list[str] = []
        with conn(port, db) as c:
            for check in checks:
                out += getattr(self, f"_pghero_{check}")(c)
        return out

    def _pghero_long_running(self, c: Any) -> list[str]:
        rows = c.execute(
            "SELECT pid, state, usename, EXTRACT(EPOCH FROM NOW() - COALESCE(query_start, "
            "xact_start)) AS s, query FROM pg_stat_activity WHERE query <> '<insufficient "
            "privilege>' AND state <> 'idle' AND pid <> pg_backend_pid() AND datname = "
            f"current_database() AND NOW() - COALESCE(query_start, xact_start) > interval "
            f"'{SCALED} seconds' ORDER BY COALESCE(query_start, xact_start) DESC").fetchall()
        return [cut(f"long running query: pid {r[0]} {r[1]} {r[3]:.0f} s: {r[4]}") for r in rows]

    def _pghero_blocked(self, c: Any) -> list[str]:
        rows = c.execute(
            "SELECT COALESCE(blockingl.relation::regclass::text, blockingl.locktype), "
            "blockeda.pid, blockinga.pid FROM pg_catalog.pg_locks blockedl LEFT JOIN "
            "pg_stat_activity blockeda ON blockedl.pid = blockeda.pid LEFT JOIN "
            "pg_catalog.pg_locks blockingl ON blockedl.pid != blockingl.pid AND "
            "(blockingl.transactionid = blockedl.transactionid OR (blockingl.relation = "
            "blockedl.relation AND blockingl.locktype = blockedl.locktype)) LEFT JOIN "
            "pg_stat_activity blockinga ON blockingl.pid = blockinga.pid AND blockinga.datid = "
            "blockeda.datid WHERE NOT blockedl.granted AND blockeda.query <> '<insufficient "
            "privilege>' AND blockeda.datname = current_database()").fetchall()
        return [f"blocked query: pid {r[1]} by pid {r[2]} on {r[0]}" for r in rows]

    def _pghero_invalid_indexes(self, c: Any) -> list[str]:
        rows = c.execute(
            "SELECT c.relname FROM pg_catalog.pg_class c, pg_catalog.pg_namespace n, "
            "pg_catalog.pg_index i WHERE i.indisvalid = false AND i.indexrelid = c.oid AND "
            "c.relnamespace = n.oid AND n.nspname != 'pg_catalog' AND n.nspname != "
            "'information_schema' AND n.nspname != 'pg_toast' ORDER BY c.relname").fetchall()
        return [f"invalid index: {r[0]}" for r in rows]

    def _pghero_duplicate_indexes(self, c: Any) -> list[str]:
        rows = c.execute(
            "SELECT schemaname, t.relname, ix.relname, regexp_replace(pg_get_indexdef("
            "i.indexrelid), '^[^\\(]*\\((.*)\\)$', '\\1'), regexp_replace(pg_get_indexdef("
            "i.indexrelid), '.* USING ([^ ]*) \\(.*', '\\1'), indisunique, indisprimary, "
            "indisvalid, indexprs::text, indpred::text FROM pg_index i INNER JOIN pg_class t "
            "ON t.oid = i.indrelid INNER JOIN pg_class ix ON ix.oid = i.indexrelid LEFT JOIN "
            "pg_stat_user_indexes ui ON ui.indexrelid = i.indexrelid WHERE schemaname IS NOT "
            "NULL ORDER BY 1, 2").fetchall()
        idx = [{"schema": r[0], "table": r[1], "name": r[2],
                "columns": [x.strip('"') for x in r[3].replace(") WHERE (", " WHERE ").split(", ")],
                "using": r[4], "unique": r[5], "primary": r[6], "valid": r[7],
                "indexprs": r[8], "indpred": r[9]} for r in rows]
        out = []
        for i in idx:
            if i["primary"] or i["unique"] or i["indexprs"] or i["indpred"] or not i["valid"]:
                continue
            for cov in idx:
                if (cov["table"] == i["table"] and cov["schema"] == i["schema"]
                        and cov["name"] != i["name"] and cov["using"] == i["using"]
                        and cov["columns"][: len(i["columns"])] == i["columns"]
                        and not cov["indexprs"] and not cov["indpred"] and cov["valid"]):
                    if cov["columns"] != i["columns"] or i["name"] > cov["name"]:
                        out.append(f"duplicate index: {i['name']} covered by {cov['name']}")
                    break
        return out

    def _pghero_sequence_danger(self, c: Any) -> list[str]:
        rows = c.execute(
            "SELECT n.nspname, c.relname, attname, format_type(a.atttypid, a.atttypmod), "
            "pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attribute a INNER JOIN "
            "pg_catalog.pg_class c ON c.oid = a.attrelid INNER JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace INNER JOIN pg_catalog.pg_attrdef d ON (a.attrelid, "
            "a.attnum) = (d.adrelid, d.adnum) WHERE NOT a.attisdropped AND a.attnum > 0 AND "
            "pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval%'").fetchall()
        out = []
        for _schema, table, col, ctype, default in rows:
            seq = default.split("'")[1]
            last = c.execute(f"SELECT last_value FROM {seq}").fetchone()[0]
            top = 2147483647 if ctype == "integer" else 9223372036854775807
            if last / top > 0.9:
                out.append(f"sequence danger: {seq} feeding {table}.{col} ({ctype}) at "
                           f"{100 * last / top:.1f}%")
        return out

    def _pghero_replication_lag(self, c: Any) -> list[str]:
        lag = c.execute("SELECT CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() "
                        "= pg_last_wal_replay_lsn() THEN 0 ELSE EXTRACT (EPOCH FROM NOW() - "
                        "pg_last_xact_replay_timestamp()) END").fetchone()[0]
        return [f"replication lag: {float(lag):.0f} s"] if lag and float(lag) > 5 else []

    def _pghero_slots(self, c: Any) -> list[str]:
        rows = c.execute("SELECT slot_name FROM pg_replication_slots WHERE NOT active").fetchall()
        return [f"inactive replication slot: {r[0]}" for r in rows]

    # -- one scenario -----------------------------------------------------------------------

    def scenario(self, name: str, setup: Callable[[], Callable[[], None] | None], *,
                 cp: tuple[tuple[str, ...], ...] = (), cp_port: int | None = None,
                 pghero: tuple[str, ...] = (), pghero_port: int | None = None,
                 ours: tuple[str, ...] = (), db: str = "postgres", wait: float = 3.0,
                 **ours_kw: Any) -> None:
        before = self.alerts()
        undo = setup()
        try:
            time.sleep(wait)
            fired = sorted(self.alerts() - before)
            cp_lines = self.check_postgres(cp_port or self.p.port, db, *cp) if cp else None
            ph = self.pghero(pghero_port or self.p.port, db, *pghero) if pghero else None
            our, _ = self.ours(*ours, db=db, **ours_kw)
        finally:
            if undo:
                undo()

        def cell(lines: list[str] | None) -> str:
            if lines is None:
                return "n/a"
            return "<br>".join(x.replace("|", "\\|") for x in lines) or "—"
        self.rows.append((name, cell(cp_lines), cell(fired), cell(ph), cell(our)))
        print(f"  {name}: done", file=sys.stderr)


def hold(c: psycopg.Connection[Any], q: str) -> threading.Thread:
    def run() -> None:
        try:
            c.execute(q)
        except psycopg.Error:
            pass
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ksa-peers-pg-"))
    primary = start_primary()
    standby = Standby(primary, "standby_1")
    standby.start()
    peers = Peers(primary, standby, tmp)
    P = primary.port
    try:
        run(peers, P, standby)
    finally:
        peers.close()
        standby.close()
        primary.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("| scenario | check_postgres 2.25 | awesome-prometheus-alerts and postgres_mixin rules over postgres_exporter 0.11 "
          "| PgHero (its SQL and rules) | postgres-diagnostics |")
    print("|---|---|---|---|---|")
    for row in peers.rows:
        print("| " + " | ".join(row) + " |")


def run(peers: Peers, P: int, standby: Standby) -> None:
    sc = f"{SCALED} s"
    # 1. idle in transaction
    def idle_xact() -> Callable[[], None]:
        c = conn(P, application_name="forgot-commit")
        c.execute("BEGIN")
        c.execute("SELECT 1")
        return c.close
    def idle_plain() -> Callable[[], None]:
        c = conn(P, application_name="pooled")
        c.execute("SELECT 1")
        return c.close
    for name, setup in ((f"1. a session idle in a transaction for {sc}+ (all tools: {sc})", idle_xact),
                        ("1'. look-alike: an idle pooled session, no transaction", idle_plain)):
        peers.scenario(name, setup, cp=(("txn_idle", f"--warning={SCALED}s"),),
                       pghero=("long_running",), ours=("connection", "performance"),
                       thresholds={"idle_in_transaction_seconds": SCALED,
                                   "long_transaction_seconds": SCALED, "long_query_seconds": SCALED})

    # 2. a lock chain
    sql(P, "DROP TABLE IF EXISTS acct", "CREATE TABLE acct (id int PRIMARY KEY, v int)",
        "INSERT INTO acct VALUES (1, 0), (2, 0)")
    def chain() -> Callable[[], None]:
        a, b = conn(P, application_name="holder"), conn(P, application_name="waiter")
        a.execute("BEGIN")
        a.execute("UPDATE acct SET v = v + 1 WHERE id = 1")
        hold(b, "UPDATE acct SET v = v + 1 WHERE id = 1")
        def undo() -> None:
            a.execute("ROLLBACK")
            a.close()
            time.sleep(0.2)
            b.close()
        return undo
    def no_chain() -> Callable[[], None]:
        a, b = conn(P), conn(P)
        a.execute("BEGIN")
        a.execute("UPDATE acct SET v = v + 1 WHERE id = 1")
        b.execute("BEGIN")
        b.execute("UPDATE acct SET v = v + 1 WHERE id = 2")
        def undo() -> None:
            for x in (a, b):
                x.execute("ROLLBACK")
                x.close()
        return undo
    for name, setup in ((f"2. a writer blocked by an open transaction for {sc}+ (all tools: {sc})", chain),
                        ("2'. look-alike: two open transactions on different rows", no_chain)):
        peers.scenario(name, setup, cp=(("locks", "--warning=waiting=1"),),
                       pghero=("blocked",), ours=("performance",),
                       thresholds={"lock_wait_seconds": SCALED, "long_transaction_seconds": 3600})

    # 3. replication slots
    def orphan_slot() -> Callable[[], None]:
        sql(P, "SELECT pg_create_physical_replication_slot('orphan', true)")
        return lambda: sql(P, "SELECT pg_drop_replication_slot('orphan')") and None
    for name, setup in (("3. an inactive physical slot", orphan_slot),
                        ("3'. look-alike: the standby's slot, active", lambda: None)):
        peers.scenario(name, setup, cp=(("replication_slots", "--warning=1", "--critical=1GB"),),
                       pghero=("slots",), ours=("replication",))

    # 4-6. schema: invalid, duplicate indexes, sequences near the column's max
    sql(P, "DROP DATABASE IF EXISTS app", "CREATE DATABASE app")
    sql(P, "CREATE TABLE d (id int PRIMARY KEY, a int, b int)",
        "INSERT INTO d SELECT g, g % 10, g FROM generate_series(1, 100) g",
        "CREATE TABLE ok (id int PRIMARY KEY, a int, b int)",
        "CREATE TABLE near (id int PRIMARY KEY)",
        "CREATE SEQUENCE near_id_seq AS bigint OWNED BY near.id",
        "ALTER TABLE near ALTER id SET DEFAULT nextval('near_id_seq')",
        "CREATE TABLE far (id bigserial PRIMARY KEY)", db="app")
    def invalid() -> Callable[[], None]:
        try:
            sql(P, "CREATE UNIQUE INDEX CONCURRENTLY d_a_uniq ON d (a)", db="app")
        except psycopg.errors.UniqueViolation:
            pass
        return lambda: sql(P, "DROP INDEX d_a_uniq", db="app") and None
    def valid() -> Callable[[], None]:
        sql(P, "CREATE UNIQUE INDEX d_b_uniq ON d (b)", db="app")
        return lambda: sql(P, "DROP INDEX d_b_uniq", db="app") and None
    def dup() -> Callable[[], None]:
        sql(P, "CREATE INDEX ok_a ON ok (a)", "CREATE INDEX ok_a_b ON ok (a, b)", db="app")
        return lambda: sql(P, "DROP INDEX ok_a, ok_a_b", db="app") and None
    def not_dup() -> Callable[[], None]:
        sql(P, "CREATE UNIQUE INDEX ok_a_u ON ok (a)", "CREATE INDEX ok_a_b2 ON ok (a, b)",
            "CREATE INDEX ok_a_part ON ok (a) WHERE b > 0", "CREATE INDEX ok_b_a ON ok (b, a)", db="app")
        return lambda: sql(P, "DROP INDEX ok_a_u, ok_a_b2, ok_a_part, ok_b_a", db="app") and None
    def seq_near() -> Callable[[], None]:
        sql(P, "SELECT setval('near_id_seq', 2000000000)", db="app")
        return lambda: sql(P, "SELECT setval('near_id_seq', 1)", db="app") and None
    def seq_far() -> Callable[[], None]:
        sql(P, "SELECT setval('far_id_seq', 2000000000)", db="app")
        return lambda: sql(P, "SELECT setval('far_id_seq', 1)", db="app") and None
    schema_checks = ("invalid_indexes", "duplicate_indexes", "sequence_danger")
    for name, setup in (("4. an invalid index (a failed CREATE UNIQUE INDEX CONCURRENTLY)", invalid),
                        ("4'. look-alike: a valid unique index", valid),
                        ("5. an index covered by another: (a) beside (a, b)", dup),
                        ("5'. look-alike: unique (a), partial (a), (b, a) beside (a, b)", not_dup),
                        ("6. a bigint sequence feeding an integer column at 2,000,000,000", seq_near),
                        ("6'. look-alike: a bigserial at the same value", seq_far)):
        peers.scenario(name, setup, db="app", wait=0.5,
                       cp=(("sequence",),), pghero=schema_checks, ours=("schema", "maintenance"))

    # 7. a standby whose replay is paused, behind by WAL and time
    S = standby.port
    def paused() -> Callable[[], None]:
        sql(S, "SELECT pg_wal_replay_pause()")
        sql(P, "CREATE TABLE IF NOT EXISTS tick (v int)")
        for _ in range(3):
            sql(P, "INSERT INTO tick VALUES (1)")
            time.sleep(1)
        return lambda: sql(S, "SELECT pg_wal_replay_resume()") and None
    def caught_up() -> None:
        sql(P, "INSERT INTO tick VALUES (2)")
        time.sleep(1)
        return None
    ep = (f"127.0.0.1:{P}", f"127.0.0.1:{S}")
    for name, setup in (("7. standby replay paused, 6+ s behind (ours and PgHero: 5 s)", paused),
                        ("7'. look-alike: the standby streaming, caught up", caught_up)):
        peers.scenario(name, setup, wait=3.5, cp=(("hot_standby_delay", f"--dbport={P},{S}",
                                                   "--dbhost=127.0.0.1,127.0.0.1", "--warning=1",),),
                       pghero=("replication_lag",), pghero_port=S, ours=("replication",),
                       endpoints=ep)

    # 8. deadlocks now, against a lifetime count; in database app (the rule leaves out
    # the database named postgres)
    sql(P, "CREATE TABLE IF NOT EXISTS dl (id int PRIMARY KEY, v int)",
        "INSERT INTO dl VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING", db="app")
    _, first = peers.ours("performance", db="app")
    history = (Snapshot(at=first.started_at, metrics=first.metrics),)
    def deadlocks() -> None:
        for _ in range(6):
            a, b = conn(P, "app"), conn(P, "app")
            a.execute("BEGIN")
            b.execute("BEGIN")
            a.execute("UPDATE dl SET v = 1 WHERE id = 1")
            b.execute("UPDATE dl SET v = 1 WHERE id = 2")
            th = hold(a, "UPDATE dl SET v = 2 WHERE id = 2")
            time.sleep(0.1)
            try:
                b.execute("UPDATE dl SET v = 2 WHERE id = 1")
            except psycopg.Error:
                pass
            th.join(5)
            a.close()
            b.close()
        time.sleep(1.1)
        return None
    peers.scenario("8. six deadlocks in the last seconds (ours: the previous run as history)",
                   deadlocks, db="app", wait=2.0, ours=("performance",), history=history)
    peers.scenario("8'. look-alike: the same lifetime count, none since (ours: no history, "
                   "two readings 1 s apart)", lambda: None, db="app", wait=61.0,
                   ours=("performance",))

    # 10. requested checkpoints
    _, before = peers.ours("checkpoints")
    ck_history = (Snapshot(at=before.started_at, metrics=before.metrics),)
    def checkpoints() -> None:
        for i in range(4):
            sql(P, "CREATE TABLE IF NOT EXISTS ck (v int)", f"INSERT INTO ck VALUES ({i})", "CHECKPOINT")
        time.sleep(0.5)  # the checkpointer reports its statistics after CHECKPOINT returns
        return None
    peers.scenario("10. four CHECKPOINTs in a few seconds, none timed (ours: the previous run "
                   "as history)", checkpoints, ours=("checkpoints",),
                   history=ck_history)
    _, before = peers.ours("checkpoints")
    peers.scenario("10'. look-alike: no checkpoint since the previous run", lambda: None,
                   ours=("checkpoints",),
                   history=(Snapshot(at=before.started_at, metrics=before.metrics),))

    # 9. dead tuples
    def churn() -> Callable[[], None]:
        sql(P, "CREATE TABLE churn (id int PRIMARY KEY)",
            "INSERT INTO churn SELECT generate_series(1, 30000)", "DELETE FROM churn WHERE id > 5000",
            "SELECT pg_stat_force_next_flush()")
        return lambda: sql(P, "DROP TABLE churn") and None
    def steady() -> Callable[[], None]:
        sql(P, "CREATE TABLE steady (id int PRIMARY KEY)",
            "INSERT INTO steady SELECT generate_series(1, 30000)", "DELETE FROM steady WHERE id <= 100",
            "ANALYZE steady", "SELECT pg_stat_force_next_flush()")
        return lambda: sql(P, "DROP TABLE steady") and None
    for name, setup in (("9. 25,000 dead of 30,000 rows", churn),
                        ("9'. look-alike: 100 dead of 30,000, analyzed", steady)):
        peers.scenario(name, setup, cp=(("bloat",), ("last_vacuum", "--warning=1d")),
                       ours=("maintenance",))


if __name__ == "__main__":
    main()
