"""Storage throughput: Store.record_run and Store.cached_result per second, on SQLite and
PostgreSQL (MariaDB too when it answers), against the floor: the same statements sent
with the raw driver (sqlite3, psycopg, PyMySQL) on the same tables, in the same run.

    .venv/bin/python bench/storage.py [--rounds 5] [--n 400]

Prints the median of several rounds and the ratio store/floor. A round of record_run
writes N runs (history row + cache upsert, one transaction each); a round of
cached_result reads one fresh entry N times (SQL + JSON -> DiagnosticResult).
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status  # noqa: E402
from kubestack_ai.storage import Store  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MY_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"
TK, PID = "redis:bench", "redis-diagnostics"


def sample() -> DiagnosticResult:
    """A realistic result: 5 findings with evidence, 40 metrics (~3 KB of JSON)."""
    findings = [Finding(code=f"redis.memory.check_{i}", category="memory",
                        severity=Severity.WARNING, title=f"Check {i} fired",
                        evidence={"value": i * 1000, "threshold": 900, "ratio": 1.1 + i},
                        suggestion="Do something sensible about it.") for i in range(5)]
    return DiagnosticResult(plugin_id=PID, plugin_version="1.0.0", target_name="bench",
                            status=Status.WARNING, started_at=dt.datetime.now(dt.UTC),
                            duration=0.012, findings=findings,
                            metrics={f"metric_{i}": i * 1.5 for i in range(40)},
                            categories=("memory", "latency"))


def rate(n: int, fn: Callable[[int], object]) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t0)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Backend:
    def __init__(self, name: str) -> None:
        self.name = name
        self.db = f"ksa_bench_{uuid.uuid4().hex[:10]}"
        self.tmp = tempfile.TemporaryDirectory()
        if name == "sqlite":
            self.url = f"sqlite:///{Path(self.tmp.name) / 'bench.db'}"
        else:
            admin = PG_ADMIN if name == "postgresql" else MY_ADMIN
            self._admin(f"CREATE DATABASE {self.db}")
            self.url = admin.rsplit("/", 1)[0] + "/" + self.db

    def _admin(self, sql: str) -> None:
        e = create_engine(PG_ADMIN if self.name == "postgresql" else MY_ADMIN,
                          isolation_level="AUTOCOMMIT")
        with e.connect() as c:
            c.execute(text(sql))
        e.dispose()

    def close(self) -> None:
        if self.name != "sqlite":
            force = " WITH (FORCE)" if self.name == "postgresql" else ""
            self._admin(f"DROP DATABASE IF EXISTS {self.db}{force}")
        self.tmp.cleanup()

    def raw(self) -> tuple[Any, str]:
        """A raw DB-API connection and its parameter style."""
        if self.name == "sqlite":
            import sqlite3

            c = sqlite3.connect(Path(self.tmp.name) / "bench.db", isolation_level=None)
            c.execute("PRAGMA busy_timeout = 30000")
            c.execute("PRAGMA synchronous = NORMAL")
            return c, "qmark"
        if self.name == "postgresql":
            import psycopg

            return psycopg.connect(host="127.0.0.1", user="postgres", dbname=self.db), "format"
        import pymysql

        return pymysql.connect(host="127.0.0.1", user="root", database=self.db,
                               charset="utf8mb4"), "format"


def floor_ops(backend: Backend, body: str) -> tuple[Callable[[int], object],
                                                      Callable[[int], object], Any]:
    conn, style = backend.raw()
    p = "?" if style == "qmark" else "%s"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    later = now + dt.timedelta(seconds=3600)
    run_sql = (f"INSERT INTO ksa_run (run_id, target_key, plugin_id, categories, status, "
               f"outcome, started_at, duration, recorded_at, result) "
               f"VALUES ({', '.join([p] * 10)})")
    cols = "(target_key, plugin_id, categories, run_id, created_at, expires_at, result)"
    vals = f"VALUES ({', '.join([p] * 7)})"
    if backend.name == "mariadb":
        cache_sql = (f"INSERT INTO ksa_result_cache {cols} {vals} ON DUPLICATE KEY UPDATE "
                     "run_id=VALUES(run_id), created_at=VALUES(created_at), "
                     "expires_at=VALUES(expires_at), result=VALUES(result)")
    else:
        cache_sql = (f"INSERT INTO ksa_result_cache {cols} {vals} ON CONFLICT (target_key, "
                     "plugin_id, categories) DO UPDATE SET run_id=excluded.run_id, "
                     "created_at=excluded.created_at, expires_at=excluded.expires_at, "
                     "result=excluded.result")
    read_sql = (f"SELECT result FROM ksa_result_cache WHERE target_key = {p} AND "
                f"plugin_id = {p} AND categories = {p} AND expires_at > {p}")
    tag = uuid.uuid4().hex[:6]
    sqlite = backend.name == "sqlite"

    def write(i: int) -> None:
        cur = conn.cursor()
        if sqlite:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(run_sql, (f"raw-{tag}-{i}", "redis:raw", PID, "latency,memory", "warning",
                              "completed", now, 0.012, now, body))
        cur.execute(cache_sql, ("redis:raw", PID, "latency,memory", f"raw-{tag}-{i}", now, later,
                                body))
        conn.commit() if not sqlite else cur.execute("COMMIT")
        cur.close()

    def read(i: int) -> None:
        cur = conn.cursor()
        if sqlite:
            cur.execute("BEGIN")
        cur.execute(read_sql, ("redis:raw", PID, "latency,memory",
                               dt.datetime.now(dt.UTC).replace(tzinfo=None)))
        row = cur.fetchone()
        assert row is not None
        conn.commit() if not sqlite else cur.execute("COMMIT")
        cur.close()

    return write, read, conn


def bench(name: str, rounds: int, n: int) -> dict[str, float]:
    backend = Backend(name)
    try:
        store = Store(backend.url)
        store.migrate()
        r = sample()
        body = r.model_dump_json()
        raw_write, raw_read, conn = floor_ops(backend, body)
        raw_write(-1)
        store.record_run("warm", TK, PID, ("memory", "latency"), r, ttl=3600)
        out: dict[str, list[float]] = {k: [] for k in ("record", "record_raw", "cached",
                                                       "cached_raw")}
        for k in range(rounds):
            out["record"].append(rate(n, lambda i, k=k: store.record_run(
                f"r{k}-{i}", TK, PID, ("memory", "latency"), r, ttl=3600)))
            out["record_raw"].append(rate(n, lambda i, k=k: raw_write(k * n + i)))
            out["cached"].append(rate(n, lambda i: store.cached_result(
                TK, PID, ("latency", "memory"))))
            out["cached_raw"].append(rate(n, raw_read))
        conn.close()
        store.dispose()
        return {k: statistics.median(v) for k, v in out.items()}
    finally:
        backend.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=400, help="operations per round")
    args = ap.parse_args()
    names = ["sqlite"]
    names += ["postgresql"] if port_open(5432) else []
    names += ["mariadb"] if port_open(3306) else []
    print(f"medians of {args.rounds} rounds of {args.n} operations, ops/s "
          f"(store / raw driver floor = ratio)")
    print(f"{'backend':<11} {'record_run':>11} {'floor':>8} {'ratio':>6}   "
          f"{'cached_result':>13} {'floor':>8} {'ratio':>6}")
    for name in names:
        m = bench(name, args.rounds, args.n)
        print(f"{name:<11} {m['record']:>11.0f} {m['record_raw']:>8.0f} "
              f"{m['record_raw'] / m['record']:>5.2f}x   {m['cached']:>13.0f} "
              f"{m['cached_raw']:>8.0f} {m['cached_raw'] / m['cached']:>5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
