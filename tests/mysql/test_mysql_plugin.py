"""mysql-diagnostics against real MariaDB servers: the machine's shared one and the
instances the fixtures start."""

from __future__ import annotations

import threading
import time

import pymysql
import pytest

from kubestack_ai.plugins import DiagnoseOptions, PluginManager, Severity, Snapshot, Status
from kubestack_ai.plugins.models import utcnow
from tests.conftest import free_port, port_open, require
from tests.mysql.mysql_helpers import Instance, codes, diagnose, finding, target


def test_listing_plugins_does_not_import_pymysql() -> None:
    import subprocess
    import sys

    code = ("import sys; from kubestack_ai import plugins; ids = plugins.builtin_ids(); "
            "assert 'mysql-diagnostics' in ids, ids; print('pymysql' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shared_server_performance_schema_off_is_reported_not_failed(manager: PluginManager) -> None:
    require(port_open("127.0.0.1", 3306), "MariaDB on 127.0.0.1:3306 is not running")
    r = diagnose(manager, target("127.0.0.1:3306"))
    assert r.outcome == "completed"
    assert set(r.categories) == {"replication", "performance", "connection", "innodb",
                                 "durability", "security", "schema"}
    assert r.errors == {}
    assert r.metrics["server.flavor"] == "mariadb"
    assert r.metrics["connection.threads_connected"] >= 1
    ps_off = finding(r, "mysql.performance.performance_schema_off")
    assert ps_off.severity is Severity.INFO
    assert "performance_schema=ON in my.cnf" in ps_off.suggestion
    pct = finding(r, "mysql.performance.percentiles_unavailable")
    assert pct.evidence["reason"] == "the QUERY_RESPONSE_TIME plugin is not installed"
    assert "INSTALL SONAME 'query_response_time'" in pct.suggestion
    assert r.metrics["performance.query_percentiles"] == "not available"
    assert r.metrics["replication.role"] in ("standalone", "source")


def test_percentiles_from_query_response_time(manager: PluginManager, ps: Instance) -> None:
    ps.sql(*["SELECT SLEEP(0.01)"] * 5)
    # five calls of 10 ms are the workload here (a statement needs ten calls by default)
    r = diagnose(manager, target(ps.endpoint, thresholds={
        "slow_statement_avg_ms": 5, "statement_min_calls": 5, "statement_time_share_pct": 0}),
        "performance")
    slow = finding(r, "mysql.performance.slow_statements")
    sleep = next(s for s in slow.evidence["statements"]
                 if "SLEEP" in s["statement"] and " AS " not in s["statement"])
    assert sleep["calls"] >= 5 and sleep["avg_ms"] >= 10
    assert "mysql.performance.percentiles_unavailable" not in codes(r)
    assert r.metrics["performance.query_percentiles_source"] == "information_schema.QUERY_RESPONSE_TIME"
    p50, p95, p99 = (r.metrics[f"performance.query_p{p}_ms"] for p in (50, 95, 99))
    assert 0 < p50 <= p95 <= p99
    assert p99 >= 10.0  # the 10 ms sleeps land in the (10 ms, 100 ms] bucket or above


def test_full_table_scans_on_unindexed_table(manager: PluginManager, ps: Instance) -> None:
    ps.sql("CREATE DATABASE IF NOT EXISTS scan",
           "CREATE TABLE IF NOT EXISTS scan.unindexed (id INT, v INT) ENGINE=InnoDB",
           "TRUNCATE scan.unindexed",
           "INSERT INTO scan.unindexed SELECT seq, seq % 200 FROM scan.seq_1_to_5000",
           *["SELECT * FROM scan.unindexed WHERE v = 7"] * 5)
    # five calls are the workload here (by default a statement needs ten, and a cost)
    r = diagnose(manager, target(ps.endpoint, thresholds={
        "rows_examined_min": 10000, "statement_min_calls": 5,
        "statement_rows_examined_per_s": 1}), "performance")
    scans = finding(r, "mysql.performance.full_table_scans")
    assert scans.severity is Severity.WARNING
    stmt = next(s for s in scans.evidence["statements"] if "unindexed" in s["statement"])
    assert stmt["calls"] == 5
    assert stmt["no_index_used"] == 5
    assert stmt["rows_examined"] == 25000
    assert stmt["rows_sent"] == 125
    examined = finding(r, "mysql.performance.rows_examined_high")
    row = next(s for s in examined.evidence["statements"] if "unindexed" in s["statement"])
    assert row["examined_per_row_returned"] == 200.0
    assert r.metrics["performance.digests"] > 0
    tops = r.metrics["performance.top_statements"]
    assert tops and [s["total_ms"] for s in tops] == sorted((s["total_ms"] for s in tops),
                                                            reverse=True)
    # our own reads of the catalog never show up as the workload
    assert not [s for s in tops if "_schema" in s["statement"] or s["statement"].startswith("SHOW")]


def test_threads_running_streak_from_history(manager: PluginManager, ps: Instance) -> None:
    now = utcnow()
    history = tuple(Snapshot(at=now, metrics={"performance.threads_running": v}) for v in (0, 3, 4))
    r = diagnose(manager, target(ps.endpoint, thresholds={"threads_running": 0}), "performance",
                 history=history)
    f = finding(r, "mysql.performance.threads_running_high")
    assert f.evidence["consecutive_runs_above"] == 3  # 3, 4 and this run (ours is running)
    assert "3 runs in a row" in f.title


def test_temporary_tables_on_disk(manager: PluginManager, ps: Instance) -> None:
    ps.sql("CREATE DATABASE IF NOT EXISTS tmpd",
           "CREATE TABLE IF NOT EXISTS tmpd.notes (id INT, body TEXT) ENGINE=InnoDB",
           "TRUNCATE tmpd.notes",
           "INSERT INTO tmpd.notes SELECT seq, REPEAT('x', seq % 7) FROM tmpd.seq_1_to_50",
           # grouping on a TEXT column needs an on-disk temporary table
           *["SELECT body, COUNT(*) FROM tmpd.notes GROUP BY body ORDER BY NULL"] * 110)
    r = diagnose(manager, target(ps.endpoint), "performance")
    tmp = finding(r, "mysql.performance.tmp_tables_on_disk")
    assert tmp.evidence["created_tmp_disk_tables"] >= 110
    assert "max_heap_table_size" in tmp.suggestion
    # integer settings stay integers in the evidence (16777216, not 16777216.0)
    assert isinstance(tmp.evidence["tmp_table_size"], int)
    assert isinstance(tmp.evidence["max_heap_table_size"], int)


def _deadlock(inst: Instance) -> str:
    inst.sql("CREATE DATABASE IF NOT EXISTS dl",
             "CREATE TABLE IF NOT EXISTS dl.acct (id INT PRIMARY KEY, bal INT) ENGINE=InnoDB",
             "REPLACE INTO dl.acct VALUES (1, 100), (2, 100)")
    a, b = inst.connect(autocommit=False), inst.connect(autocommit=False)
    errors: list[BaseException] = []
    try:
        ca, cb = a.cursor(), b.cursor()
        ca.execute("UPDATE dl.acct SET bal = bal - 1 WHERE id = 1")
        cb.execute("UPDATE dl.acct SET bal = bal - 2 WHERE id = 2")

        def second() -> None:
            try:
                ca.execute("UPDATE dl.acct SET bal = bal + 1 WHERE id = 2")
            except pymysql.err.OperationalError as e:
                errors.append(e)

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)  # a waits for b's row lock
        try:
            cb.execute("UPDATE dl.acct SET bal = bal + 2 WHERE id = 1")
        except pymysql.err.OperationalError as e:
            errors.append(e)
        t.join(10)
    finally:
        a.rollback()
        b.rollback()
        a.close()
        b.close()
    assert [e.args[0] for e in errors] == [1213], errors
    return "dl"


def test_deadlock_names_both_statements(manager: PluginManager, ps: Instance) -> None:
    before = diagnose(manager, target(ps.endpoint), "innodb").metrics["innodb.deadlocks"]
    _deadlock(ps)
    history = (Snapshot(at=utcnow(), metrics={"innodb.deadlocks": before}),)
    r = diagnose(manager, target(ps.endpoint), "innodb", history=history)
    dl = finding(r, "mysql.innodb.deadlock")
    assert dl.severity is Severity.WARNING
    stmts = sorted(t["statement"] for t in dl.evidence["transactions"])
    assert stmts == ["UPDATE dl.acct SET bal = bal + 1 WHERE id = 2",
                     "UPDATE dl.acct SET bal = bal + 2 WHERE id = 1"]
    assert all(t["tables"] == ["`dl`.`acct`"] for t in dl.evidence["transactions"])
    assert dl.evidence["victim"] in (1, 2)
    assert dl.evidence["deadlocks_total"] == before + 1
    assert dl.evidence["new_since_last_run"] == 1
    assert dl.evidence["counter"] == "Innodb_deadlocks"
    assert r.metrics["innodb.deadlocks"] == before + 1
    assert "same order" in dl.suggestion


def test_connections_near_low_max_connections(manager: PluginManager, ps: Instance) -> None:
    held = [ps.connect() for _ in range(10)]
    try:
        r = diagnose(manager, target(ps.endpoint), "connection")
    finally:
        for c in held:
            c.close()
    usage = finding(r, "mysql.connection.usage_high")
    assert usage.severity is Severity.WARNING
    assert usage.evidence["max_connections"] == 12
    assert usage.evidence["threads_connected"] >= 11
    assert usage.evidence["usage_pct"] >= 85
    top = usage.evidence["top_sources"][0]
    assert (top["user"], top["host"]) == ("root", "127.0.0.1") and top["connections"] >= 11
    assert "SET GLOBAL max_connections=18" in usage.suggestion
    assert r.metrics["connection.by_source"][0]["connections"] >= 11


def test_long_running_query_and_open_lock_wait(manager: PluginManager, ps: Instance) -> None:
    ps.sql("CREATE DATABASE IF NOT EXISTS lk",
           "CREATE TABLE IF NOT EXISTS lk.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
           "REPLACE INTO lk.t VALUES (1, 0)")
    holder, waiter = ps.connect(autocommit=False), ps.connect()
    try:
        holder.cursor().execute("UPDATE lk.t SET v = 1 WHERE id = 1")
        waiter.cursor().execute("SET SESSION innodb_lock_wait_timeout = 5")
        t = threading.Thread(target=lambda: _swallow(waiter, "UPDATE lk.t SET v = 2 WHERE id = 1"))
        t.start()
        time.sleep(1.5)
        r = diagnose(manager, target(ps.endpoint, thresholds={
            "long_query_seconds": 1, "long_trx_seconds": 1, "lock_wait_seconds": 1}),
            "connection", "innodb")
        t.join(10)
    finally:
        holder.rollback()
        holder.close()
        waiter.close()
    waits = finding(r, "mysql.innodb.lock_waits")
    w = waits.evidence["waits"][0]
    assert w["waiting_query"] == "UPDATE lk.t SET v = 2 WHERE id = 1"
    assert w["blocking_thread"] == holder.thread_id()
    assert waits.severity is Severity.WARNING
    longq = finding(r, "mysql.connection.long_queries")
    assert any(q["query"] == "UPDATE lk.t SET v = 2 WHERE id = 1" for q in longq.evidence["queries"])
    trx = finding(r, "mysql.connection.long_transactions")
    assert holder.thread_id() in [x["thread_id"] for x in trx.evidence["transactions"]]


def _swallow(conn: object, sql: str) -> None:
    try:
        conn.cursor().execute(sql)  # type: ignore[attr-defined]
    except pymysql.err.OperationalError:
        pass  # lock wait timeout once the holder is gone or 5 s passed


def test_user_with_few_privileges_gets_the_missing_grants(
        manager: PluginManager, ps: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    ps.sql("CREATE USER IF NOT EXISTS 'mon'@'127.0.0.1' IDENTIFIED BY 'Mon-pw-42'",
           "GRANT USAGE ON *.* TO 'mon'@'127.0.0.1'")
    monkeypatch.setenv("KSA_TEST_MON_PW", "Mon-pw-42")
    t = target(ps.endpoint, auth={"username": "mon", "password": "env:KSA_TEST_MON_PW"})
    r = diagnose(manager, t)
    assert r.outcome == "completed"
    assert r.status is Status.WARNING
    grants = {f.category: [] for f in r.findings}
    for f in r.findings:
        if f.code.endswith(".privilege_missing"):
            grants[f.category].append(f.evidence["grant"])
    who = "'mon'@'127.0.0.1'"
    assert f"GRANT PROCESS ON *.* TO {who};" in grants["innodb"]
    assert f"GRANT PROCESS ON *.* TO {who};" in grants["connection"]
    assert f"GRANT SLAVE MONITOR ON *.* TO {who};" in grants["replication"]
    assert f"GRANT SELECT ON performance_schema.* TO {who};" in grants["performance"]
    assert "GRANT PROCESS" in r.errors["innodb"]
    assert all(";;" not in e and not e.endswith(";") for e in r.errors.values()), r.errors
    assert "Mon-pw-42" not in r.model_dump_json()
    # what needs no privilege was still read
    assert r.metrics["connection.max_connections"] == 12
    assert "innodb.buffer_pool_read_hit_pct" in r.metrics


def test_wrong_password_is_auth_failed_without_the_secret(
        manager: PluginManager, ps: Instance, monkeypatch: pytest.MonkeyPatch) -> None:
    ps.sql("CREATE USER IF NOT EXISTS 'mon'@'127.0.0.1' IDENTIFIED BY 'Mon-pw-42'")
    monkeypatch.setenv("KSA_TEST_BAD_PW", "Wr0ng-s3cret")
    t = target(ps.endpoint, auth={"username": "mon", "password": "env:KSA_TEST_BAD_PW"})
    r = diagnose(manager, t)
    assert r.status is Status.CRITICAL
    f = finding(r, "mysql.connection.auth_failed")
    assert f.severity is Severity.CRITICAL
    assert "the server refused user 'mon': (1045) Access denied for user 'mon'@'127.0.0.1' " \
           "(using password: YES)" in f.evidence["error"]
    assert "Wr0ng-s3cret" not in r.model_dump_json()


def test_unreachable_port(manager: PluginManager) -> None:
    port = free_port()
    r = diagnose(manager, target(f"127.0.0.1:{port}"))
    assert r.status is Status.CRITICAL
    f = finding(r, "mysql.connection.unreachable")
    assert f"127.0.0.1:{port}: (2003) Can't connect to MySQL server on '127.0.0.1'" \
        in f.evidence["error"]
    assert "Connection refused" in f.evidence["error"]


def test_tls_verified_with_ca_and_refused_with_another(
        manager: PluginManager, ps: Instance, tls_files: dict[str, str]) -> None:
    from kubestack_ai.plugins import Deadline
    from kubestack_ai.plugins.mysql import MySQLPlugin

    ok = target(ps.endpoint, tls={"ca_file": tls_files["ca"], "server_hostname": "localhost"})
    plugin = MySQLPlugin()
    plugin.connect(Deadline(10), ok)
    try:
        got = plugin.session().batch([("c", "SHOW SESSION STATUS LIKE 'Ssl_cipher'")], Deadline(5))
        assert got["c"][0]["Value"]  # type: ignore[index]
    finally:
        plugin.stop(Deadline(5))
    assert diagnose(manager, ok, "connection").errors == {}
    bad = target(ps.endpoint, tls={"ca_file": tls_files["other_ca"]})
    f = finding(diagnose(manager, bad), "mysql.connection.unreachable")
    assert "CERTIFICATE_VERIFY_FAILED" in f.evidence["error"]
    wrong_name = target(ps.endpoint, tls={"ca_file": tls_files["ca"],
                                          "server_hostname": "db.example.com"})
    f = finding(diagnose(manager, wrong_name), "mysql.connection.unreachable")
    assert "db.example.com" in f.evidence["error"]



def test_diagnosis_after_an_overrun_uses_a_clean_connection(manager: PluginManager,
                                                            ps: Instance) -> None:
    """A diagnosis cut off by its deadline may still be reading when the next starts: the
    next one must not share that connection (it opens a new one) and must complete."""
    t = target(ps.endpoint)
    cut_short = 0
    for timeout in (0.002, 0.005, 0.01, 0.02, 0.04):
        cut = manager.diagnose(t, DiagnoseOptions(), timeout=timeout)
        # cut off by the sandbox, or stopped by its own deadline checks
        cut_short += cut.outcome == "timed_out" or bool(cut.errors)
        r = manager.diagnose(t, DiagnoseOptions(), timeout=20)
        assert r.outcome == "completed" and r.errors == {}, (timeout, r.errors)
        assert r.metrics["connection.max_connections"] == 12
    assert cut_short >= 1


def test_privileges_held_through_a_role_count(manager: PluginManager, ps: Instance,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ps.sql("CREATE ROLE IF NOT EXISTS ksa_monitor",
           "GRANT PROCESS, SLAVE MONITOR ON *.* TO ksa_monitor",
           "GRANT SELECT ON performance_schema.* TO ksa_monitor",
           "GRANT SELECT ON mysql.user TO ksa_monitor",
           "GRANT SELECT ON mysql.global_priv TO ksa_monitor",
           "CREATE USER IF NOT EXISTS 'rolemon'@'127.0.0.1' IDENTIFIED BY 'Role-pw-7'",
           "GRANT ksa_monitor TO 'rolemon'@'127.0.0.1'",
           "SET DEFAULT ROLE ksa_monitor FOR 'rolemon'@'127.0.0.1'")
    monkeypatch.setenv("KSA_TEST_ROLE_PW", "Role-pw-7")
    t = target(ps.endpoint, auth={"username": "rolemon", "password": "env:KSA_TEST_ROLE_PW"})
    r = diagnose(manager, t)
    assert not [f for f in r.findings if f.code.endswith(".privilege_missing")], r.findings
    assert r.errors == {}
    assert r.metrics["performance.digests"] > 0
