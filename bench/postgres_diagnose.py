"""PostgreSQL plugin benchmark (issue 23): a full diagnosis against its floor on a
database of 1,000 tables.

    .venv/bin/python bench/postgres_diagnose.py [--runs 20] [--tables 1000]

Starts its own PostgreSQL 15 (initdb on a free loopback port, tests/pgserver.py) and
stops it at the end. The database holds N tables, each with a primary key, a secondary
index, a foreign key to a parent and a sequence.

- ours: PluginManager.diagnose, every category, the connection reused between runs as a
  worker does, with the previous run as stored history (as a worker with storage runs:
  counters judged over the window between runs, no in-run second reading).
- floor, one by one: the very statements the diagnosis sent, captured from one run,
  replayed with raw psycopg, one round trip each (dict rows, fetchall).
- floor, pipelined: the same statements in the same pipelines the plugin sends.
Ratios are of medians measured interleaved in the same run. Then one check_postgres run
of the equivalent actions and one postgres_exporter scrape, when installed.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager, Snapshot  # noqa: E402
from kubestack_ai.plugins.postgres.client import Session  # noqa: E402
from tests.conftest import free_port, port_open  # noqa: E402
from tests.pgserver import PgServer  # noqa: E402

DEADLINE = 30.0
CHECK_POSTGRES_ACTIONS = ("backends", "txn_idle", "query_time", "txn_time", "locks",
                          "replication_slots", "txn_wraparound", "autovac_freeze",
                          "last_vacuum", "last_analyze", "bloat", "sequence",
                          "prepared_txns", "checkpoint", "hitratio", "settings_checksum")


def seed(port: int, tables: int) -> None:
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                         autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS parent (id int PRIMARY KEY)")
        c.execute("INSERT INTO parent SELECT generate_series(1, 100) ON CONFLICT DO NOTHING")
        c.execute(f"""DO $$ BEGIN FOR i IN 1..{tables} LOOP
            EXECUTE format('CREATE TABLE IF NOT EXISTS t%s (id serial PRIMARY KEY, '
                           'parent_id int REFERENCES parent, v int)', i);
            EXECUTE format('CREATE INDEX IF NOT EXISTS t%s_v ON t%s (v)', i, i);
            EXECUTE format('INSERT INTO t%s (parent_id, v) SELECT 1 + g %% 100, g '
                           'FROM generate_series(1, 20) g', i);
        END LOOP; END $$""")
        c.execute("ANALYZE")


def capture(manager: PluginManager, target: MiddlewareTarget, opts: DiagnoseOptions
            ) -> list[list[str]]:
    batches: list[list[str]] = []
    original = Session.batch

    def recording(self: Session, queries: Any, deadline: Any) -> Any:
        batches.append([sql for _, sql in queries])
        return original(self, queries, deadline)

    Session.batch = recording  # type: ignore[method-assign]
    try:
        manager.diagnose(target, opts, timeout=DEADLINE)
    finally:
        Session.batch = original  # type: ignore[method-assign]
    return batches


def floor_single(conn: Any, batches: list[list[str]]) -> None:
    for sqls in batches:
        for sql in sqls:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(sql)
                cur.fetchall()


def floor_pipelined(conn: Any, batches: list[list[str]]) -> None:
    for sqls in batches:
        curs = []
        with conn.pipeline():
            for sql in sqls:
                cur = conn.cursor(row_factory=dict_row)
                cur.execute(sql)
                curs.append(cur)
        for cur in curs:
            cur.fetchall()


def measure(port: int, runs: int) -> dict[str, Any]:
    target = MiddlewareTarget(type="postgres", endpoints=(f"127.0.0.1:{port}",))
    m = PluginManager()
    m.load_builtin("postgres-diagnostics")
    first = m.diagnose(target, DiagnoseOptions(), timeout=DEADLINE)
    history = [Snapshot(at=first.started_at, metrics=first.metrics)]
    opts = DiagnoseOptions(history=tuple(history))
    batches = capture(m, target, opts)
    conn = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                           autocommit=True)
    last: list[Any] = []

    def ours() -> None:
        r = m.diagnose(target, opts, timeout=DEADLINE)
        last[:] = [r]

    variants = {"ours": ours, "floor_single": lambda: floor_single(conn, batches),
                "floor_pipelined": lambda: floor_pipelined(conn, batches)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    try:
        for i in range(runs):
            for k in order[i % len(order):] + order[:i % len(order)]:
                t0 = time.perf_counter()
                variants[k]()
                times[k].append(time.perf_counter() - t0)
    finally:
        conn.close()
        m.stop_all()
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {"ms": med, "statements": sum(map(len, batches)), "round_trips": len(batches),
            "last": last[0]}


def check_postgres(port: int) -> float | None:
    exe = shutil.which("check_postgres.pl") or shutil.which("check_postgres")
    if exe is None:
        print("  check_postgres: not installed (apt-get install check-postgres)")
        return None
    t0 = time.perf_counter()
    for action in CHECK_POSTGRES_ACTIONS:
        subprocess.run([exe, f"--action={action}", "-H", "127.0.0.1", "-p", str(port),
                        "-u", "postgres", "--db=postgres"], capture_output=True, timeout=120)
    return (time.perf_counter() - t0) * 1e3


def exporter_scrape(port: int) -> float | None:
    exe = shutil.which("prometheus-postgres-exporter")
    if exe is None:
        print("  postgres_exporter: not installed (apt-get install prometheus-postgres-exporter)")
        return None
    web = free_port()
    env = {"DATA_SOURCE_NAME": f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{web}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if port_open("127.0.0.1", web):
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{web}/metrics"
        urllib.request.urlopen(url, timeout=30).read()  # first scrape: connections made
        samples = []
        for _ in range(5):
            t0 = time.perf_counter()
            urllib.request.urlopen(url, timeout=30).read()
            samples.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(samples)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--tables", type=int, default=1000)
    args = ap.parse_args()
    srv = PgServer()
    try:
        srv.start()
        t0 = time.perf_counter()
        seed(srv.port, args.tables)
        print(f"PostgreSQL {srv.port}: {args.tables} tables seeded in "
              f"{time.perf_counter() - t0:.1f} s")
        got = measure(srv.port, args.runs)
        ms = got["ms"]
        print(f"full diagnosis, {got['statements']} statements in {got['round_trips']} "
              f"pipelines, median of {args.runs}:")
        print(f"  ours            {ms['ours']:8.1f} ms")
        print(f"  floor one by one{ms['floor_single']:8.1f} ms  ratio "
              f"{ms['ours'] / ms['floor_single']:.2f}x (goal <= 1.3x)")
        print(f"  floor pipelined {ms['floor_pipelined']:8.1f} ms  ratio "
              f"{ms['ours'] / ms['floor_pipelined']:.2f}x")
        r = got["last"]
        print(f"  last run: {r.status.name}, errors={r.errors}, "
              f"{len(r.findings)} findings: {sorted({f.code for f in r.findings})}")
        cp = check_postgres(srv.port)
        if cp is not None:
            print(f"check_postgres, {len(CHECK_POSTGRES_ACTIONS)} actions, one run: {cp:.0f} ms")
        ex = exporter_scrape(srv.port)
        if ex is not None:
            print(f"postgres_exporter scrape, median of 5: {ex:.1f} ms")
    finally:
        srv.close()


if __name__ == "__main__":
    main()
