"""Issue 24 item 6: counters since start judged as rates, on MariaDB servers we start.
Logins refused in a server's first seconds are recent ("since start" is within the
window); lifetime ratios (failed logins, thread cache, tmp tables on disk, joins without
indexes) are judged over the window, never as a lifetime share; each with the healthy
look-alike that must stay quiet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from kubestack_ai.plugins import PluginManager, Severity, Snapshot
from kubestack_ai.plugins.models import utcnow
from tests.mysql.mysql_helpers import Instance, codes, diagnose, finding, target

RATIOS = ("mysql.connection.aborted_connects", "mysql.connection.thread_cache_low",
          "mysql.performance.tmp_tables_on_disk", "mysql.performance.joins_without_indexes")


@pytest.fixture
def fresh(mariadb_template: Path, tmp_path: Path) -> Iterator[Any]:
    started: list[Instance] = []

    def start(*args: str) -> Instance:
        inst = Instance(f"fresh{len(started)}", tmp_path, mariadb_template, list(args))
        started.append(inst)
        return inst.wait()

    yield start
    for inst in started:
        inst.stop()


def test_logins_refused_in_the_first_seconds_of_a_server_are_recent(
        manager: PluginManager, fresh: Any) -> None:
    inst = fresh("--max-connections=10")  # MariaDB's least
    inst.sql("CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'App-pw-24'",
             "GRANT USAGE ON *.* TO 'app'@'127.0.0.1'")
    held, refused = [], 0
    for _ in range(14):
        try:
            held.append(inst.connect("app", "App-pw-24"))
        except pymysql.err.OperationalError as e:
            assert e.args[0] == 1040, e
            refused += 1
    for c in held:
        c.close()
    assert refused >= 3
    r = diagnose(manager, target(inst.endpoint), "connection")
    f = finding(r, "mysql.connection.refused")
    # uptime seconds, shorter than the window: "since start" is the window
    assert f.severity is Severity.WARNING, f.title
    assert f.evidence["window_source"] == "uptime"
    assert f.evidence["refused_in_window"] == f.evidence["refused"] >= refused
    assert "none in the last" not in f.title

    # the look-alike: a young server as busy, up to one login short of its limit (on
    # MariaDB a full server's Aborted_connects are its refusals: see window.py)
    quiet = fresh("--max-connections=10")
    quiet.sql("CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'App-pw-24'")
    conns = [quiet.connect("app", "App-pw-24") for _ in range(8)]
    for c in conns:
        c.close()
    r = diagnose(manager, target(quiet.endpoint), "connection")
    assert r.metrics["connection.max_connections_reached"] is False
    assert r.metrics["connection.max_used_connections"] >= 8
    assert "mysql.connection.refused" not in codes(r)


def _seed(inst: Instance, bad: bool) -> None:
    """30 logins (5 of them refused for a wrong password when ``bad``), 120 temporary
    tables (on disk when ``bad``: a 1 kB tmp_table_size) and 30 joins (without an index
    when ``bad``). The ratios are judged from 20 connections (min_connections_for_ratios,
    100 by default) to keep the test short."""
    for i in range(30):
        if bad and i % 6 == 0:
            with pytest.raises(pymysql.err.OperationalError):
                inst.connect("root", "wrong-password")
            continue
        inst.connect().close()
    with inst.connect() as c, c.cursor() as cur:
        cur.execute("SET SESSION tmp_table_size=1024, max_heap_table_size=16384"
                    if bad else "SET SESSION tmp_table_size=16777216, max_heap_table_size=16777216")
        for _ in range(120):
            cur.execute("SELECT v, COUNT(*) FROM app.a GROUP BY v ORDER BY COUNT(*) DESC")
        table = "app.b" if bad else "app.b_indexed"
        for _ in range(30):
            cur.execute(f"SELECT COUNT(*) FROM app.a JOIN {table} USING (k)")


def test_lifetime_ratios_are_judged_over_the_window(manager: PluginManager, fresh: Any) -> None:
    inst = fresh("--thread-cache-size=0")
    rows = ", ".join(f"({i}, {i % 50}, 'value-{i}')" for i in range(400))
    inst.sql("CREATE DATABASE app",
             "CREATE TABLE app.a (id INT PRIMARY KEY, k INT, v VARCHAR(64))",
             "CREATE TABLE app.b (id INT PRIMARY KEY, k INT)",
             "CREATE TABLE app.b_indexed (id INT PRIMARY KEY, k INT, KEY (k))",
             f"INSERT INTO app.a VALUES {rows}",
             "INSERT INTO app.b SELECT id, k FROM app.a",
             "INSERT INTO app.b_indexed SELECT id, k FROM app.a")
    _seed(inst, bad=True)
    time.sleep(2.1)  # older than the window (1 s here), with nothing since
    old = target(inst.endpoint, thresholds={"rate_window_seconds": 1,
                                            "min_connections_for_ratios": 20})
    r = diagnose(manager, old, "connection", "performance")
    # the lifetime shares are bad, and say so, as infos: nothing shows they still are
    for code in RATIOS[:3]:
        f = finding(r, code)
        assert f.severity is Severity.INFO and "since start" in f.title, f.title
        assert f.evidence["window"].startswith("none")
    assert RATIOS[3] not in codes(r)

    snap = Snapshot(at=utcnow(), metrics=r.metrics)
    _seed(inst, bad=True)
    t = target(inst.endpoint, thresholds={"rate_window_seconds": 600,
                                          "min_connections_for_ratios": 20})
    r = diagnose(manager, t, "connection", "performance", history=(snap,))
    for code in RATIOS:
        f = finding(r, code)
        assert f.severity is Severity.WARNING, f.title
        assert f.evidence["window_source"] == "history", f.evidence
    assert finding(r, RATIOS[0]).evidence["aborted_connects_in_window"] == 5
    assert finding(r, RATIOS[3]).evidence["joins_in_window"] >= 30

    # the look-alike: the same traffic, healthy (thread cache on, right passwords, tmp
    # tables in memory, indexed joins), judged over the window since the bad one
    inst.sql("SET GLOBAL thread_cache_size=64")
    snap = Snapshot(at=utcnow(), metrics=r.metrics)
    _seed(inst, bad=False)
    r = diagnose(manager, t, "connection", "performance", history=(snap,))
    assert not set(RATIOS) & codes(r), [f.title for f in r.findings if f.code in RATIOS]
