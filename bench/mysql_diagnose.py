"""MySQL plugin benchmark (issue 6): a full diagnosis against its floor, and a server
with many statement digests and connections.

    .venv/bin/python bench/mysql_diagnose.py [--runs 30] [--digests 10000] [--connections 1000]

Starts its own MariaDB (performance_schema ON, QUERY_RESPONSE_TIME plugin) in a temporary
directory on a free loopback port, and stops it at the end.

- ours: PluginManager.diagnose (all four categories; the connection is reused between runs,
  as a worker does), through the CLI's sandbox (a thread per call) and the Celery worker's
  (inline, Sandbox(threaded=False)).
- floor, batched: the very statements the diagnosis sent, captured from one run, replayed
  with raw PyMySQL in the same multi-statement round trips (DictCursor, fetchall).
- floor, one by one: the same statements, one round trip each (plain cursor).
Ratios are of medians measured interleaved in the same run. Then the scale step: N distinct
digests in performance_schema and M open connections in the processlist; the diagnosis
must complete within its deadline (30 s) with bounded memory.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymysql  # noqa: E402
from pymysql.constants import CLIENT  # noqa: E402

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager, Sandbox  # noqa: E402
from kubestack_ai.plugins.mysql.client import Session  # noqa: E402
from tests.conftest import free_port, port_open  # noqa: E402

DEADLINE = 30.0


def start_server(base: Path, max_connections: int) -> tuple[subprocess.Popen[bytes], int]:
    data = base / "data"
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db",
                    "--innodb-log-file-size=8M"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    port = free_port()
    proc = subprocess.Popen([
        shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}",
        f"--socket={base / 's.sock'}", f"--port={port}", "--bind-address=127.0.0.1",
        "--user=root", "--skip-name-resolve", f"--log-error={base / 'err.log'}",
        "--performance-schema=ON", "--performance-schema-digests-size=20000",
        "--plugin-load-add=query_response_time", "--query-response-time-stats=ON",
        f"--max-connections={max_connections}", "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=8M"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if port_open("127.0.0.1", port):
            try:
                connect(port).close()
                return proc, port
            except pymysql.err.MySQLError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("mariadbd did not start")


def connect(port: int, **kw: Any) -> Any:
    return pymysql.connect(host="127.0.0.1", port=port, user="root", password="",
                           autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS
                           | CLIENT.MULTI_RESULTS, **kw)


def workload(port: int) -> None:
    """Something for every category to read: tables, scans, a few statement shapes."""
    with connect(port) as c, c.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS b")
        cur.execute("CREATE TABLE IF NOT EXISTS b.t (id INT, v INT) ENGINE=InnoDB")
        cur.execute("INSERT INTO b.t SELECT seq, seq % 50 FROM b.seq_1_to_5000")
        for i in range(20):
            cur.execute(f"SELECT COUNT(*) FROM b.t WHERE v = {i}")
            cur.fetchall()


def capture(manager: PluginManager, target: MiddlewareTarget) -> list[list[str]]:
    """The statements one diagnosis sends, batch by batch."""
    batches: list[list[str]] = []
    original = Session.batch

    def recording(self: Session, queries: list[tuple[str, str]], deadline: Any) -> Any:
        batches.append([sql for _, sql in queries])
        return original(self, queries, deadline)

    Session.batch = recording  # type: ignore[method-assign]
    try:
        manager.diagnose(target, DiagnoseOptions(), timeout=DEADLINE)
    finally:
        Session.batch = original  # type: ignore[method-assign]
    return batches


def floor_batched(conn: Any, batches: list[list[str]]) -> None:
    for sqls in batches:
        with conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(";\n".join(sqls))
            cur.fetchall()
            while cur.nextset():
                cur.fetchall()


def floor_single(conn: Any, batches: list[list[str]]) -> None:
    with conn.cursor() as cur:
        for sqls in batches:
            for sql in sqls:
                cur.execute(sql)
                cur.fetchall()


def measure(managers: dict[str, PluginManager], target: MiddlewareTarget, port: int,
            runs: int) -> dict[str, Any]:
    for m in managers.values():
        m.diagnose(target, DiagnoseOptions(), timeout=DEADLINE)  # steady state: known server
    batches = capture(managers["threaded"], target)
    conn = connect(port)
    statuses = set()
    last: list[Any] = []

    def ours(m: PluginManager) -> Any:
        def run() -> None:
            r = m.diagnose(target, DiagnoseOptions(), timeout=DEADLINE)
            statuses.add((r.outcome, str(r.status), tuple(sorted(r.errors))))
            last[:] = [r]
        return run

    variants = {"ours_threaded": ours(managers["threaded"]), "ours_inline": ours(managers["inline"]),
                "floor_batched": lambda: floor_batched(conn, batches),
                "floor_single": lambda: floor_single(conn, batches)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    order = list(variants)
    try:
        for i in range(runs):
            # rotate the order so that no variant always follows the same one
            for k in order[i % len(order):] + order[:i % len(order)]:
                t0 = time.perf_counter()
                variants[k]()
                times[k].append(time.perf_counter() - t0)
    finally:
        conn.close()
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {"ms": med, "statements": sum(map(len, batches)), "round_trips": len(batches),
            "results": statuses, "last": last[0]}


def memory(manager: PluginManager, target: MiddlewareTarget) -> tuple[float, float, Any]:
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    r = manager.diagnose(target, DiagnoseOptions(), timeout=DEADLINE)
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1048576, (rss1 - rss0) / 1024, (r, wall)


def make_digests(port: int, n: int) -> None:
    # one statement per round trip: MariaDB digests a multi-statement query's statements
    # under the first one's text. An alias is an identifier and stays in the digest, so
    # every statement is a distinct digest.
    with connect(port) as c, c.cursor() as cur:
        for i in range(n):
            cur.execute(f"SELECT {i} AS c{i}")


def slowest(port: int, batches: list[list[str]]) -> None:
    """Where the server spends the time: each statement alone, best of 3."""
    with connect(port) as c, c.cursor() as cur:
        cost = []
        for sql in (q for b in batches for q in b):
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                cur.execute(sql)
                cur.fetchall()
                best = min(best, time.perf_counter() - t0)
            cost.append((best * 1e3, " ".join(sql.split())[:70]))
    print("  costliest statements alone (best of 3): " + "; ".join(
        f"{ms:.1f} ms {text}" for ms, text in sorted(cost, reverse=True)[:3]))


def exporter_scrapes(port: int, runs: int) -> dict[str, float]:
    """prometheus-mysqld-exporter (Debian), one scrape of /metrics: default collectors, and
    with the collectors closest to our categories (digests, processlist, InnoDB status,
    query response time)."""
    exe = shutil.which("prometheus-mysqld-exporter")
    if not exe:
        return {}
    out: dict[str, float] = {}
    extra = ["--collect.perf_schema.eventsstatements", "--collect.info_schema.processlist",
             "--collect.engine_innodb_status", "--collect.info_schema.query_response_time"]
    for label, flags in (("default collectors", []), ("+ digests, processlist, innodb", extra)):
        web = free_port()
        proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{web}", *flags],
                                env={"DATA_SOURCE_NAME": f"root@(127.0.0.1:{port})/"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{web}/metrics"
            for _ in range(50):
                if port_open("127.0.0.1", web):
                    break
                time.sleep(0.1)
            times = []
            for _ in range(runs + 1):
                t0 = time.perf_counter()
                with urllib.request.urlopen(url, timeout=30) as resp:
                    body = resp.read()
                times.append(time.perf_counter() - t0)
            assert b"mysql_up 1" in body
            out[label] = statistics.median(times[1:]) * 1e3
        finally:
            proc.terminate()
            proc.wait(10)
    return out


def mysqltuner(port: int) -> tuple[float, int] | None:
    exe = shutil.which("mysqltuner")
    if not exe:
        return None
    t0 = time.perf_counter()
    rc = subprocess.run([exe, "--host", "127.0.0.1", "--port", str(port), "--user", "root",
                         "--pass", "", "--nocolor", "--forcemem", "2048", "--forceswap", "0"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300).returncode
    return time.perf_counter() - t0, rc


def peers(port: int, runs: int, tuner: bool, worker_ms: float) -> None:
    for label, ms in exporter_scrapes(port, runs).items():
        print(f"  peer: mysqld_exporter scrape, {label:30s} median {ms:8.2f} ms   "
              f"worker/scrape {worker_ms / ms:.2f}x (goal <= 0.5)")
    got = mysqltuner(port) if tuner else None
    if got:
        print(f"  peer: mysqltuner (Debian 1.9.9), one run, whole process: {got[0]:.1f} s, "
              f"exit status {got[1]}")


def report(title: str, m: dict[str, Any]) -> float:
    """Prints the medians and ratios; returns the worker path's median (ms)."""
    ms = m["ms"]
    print(f"\n{title}: {m['statements']} statements in {m['round_trips']} round trips; "
          f"outcomes {sorted(m['results'])}")
    fb, fs = ms["floor_batched"], ms["floor_single"]
    print(f"  floor, same batches, raw PyMySQL             median {fb:8.2f} ms")
    print(f"  floor, one statement per round trip          median {fs:8.2f} ms")
    for k, label in (("ours_threaded", "ours, CLI sandbox (a thread per call)"),
                     ("ours_inline", "ours, worker sandbox (inline)")):
        print(f"  {label:44s} median {ms[k]:8.2f} ms   ratio {ms[k] / fb:.2f}x batched, "
              f"{ms[k] / fs:.2f}x one by one")
    print(f"  ratios: worker/floor {ms['ours_inline'] / fb:.2f}x (goal <= 1.2), "
          f"CLI/floor {ms['ours_threaded'] / fb:.2f}x (goal <= 1.3)")
    return float(ms["ours_inline"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--scale-runs", type=int, default=7)
    ap.add_argument("--digests", type=int, default=10000)
    ap.add_argument("--connections", type=int, default=1000)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ksa-bench-mysql-"))
    proc, port = start_server(base, args.connections + 100)
    held: list[Any] = []
    managers = {"threaded": PluginManager(), "inline": PluginManager(sandbox=Sandbox(threaded=False))}
    manager = managers["threaded"]
    target = MiddlewareTarget(type="mysql", endpoints=(f"127.0.0.1:{port}",),
                              auth={"username": "root"})
    try:
        workload(port)
        worker_ms = report("Small server", measure(managers, target, port, args.runs))
        peers(port, args.runs, tuner=True, worker_ms=worker_ms)

        t0 = time.perf_counter()
        make_digests(port, args.digests)
        with ThreadPoolExecutor(8) as pool:
            held.extend(pool.map(lambda _: connect(port), range(args.connections)))
        print(f"\nScale setup: {args.digests} digests, {len(held)} extra connections "
              f"({time.perf_counter() - t0:.1f} s)")
        m = measure(managers, target, port, args.scale_runs)
        r = m["last"]
        worker_ms = report("Scale", m)
        print(f"  digests in performance_schema: {r.metrics.get('performance.digests')}, "
              f"threads_connected: {r.metrics.get('connection.threads_connected')}, "
              f"status {str(r.status)}, findings {len(r.findings)}, "
              f"result JSON {len(r.model_dump_json()) / 1024:.1f} KiB")
        peers(port, args.scale_runs, tuner=False, worker_ms=worker_ms)
        slowest(port, capture(manager, target))
        peak, rss, (r2, wall) = memory(manager, target)
        print(f"  one run under tracemalloc: {wall * 1e3:.0f} ms (deadline {DEADLINE:g} s, "
              f"outcome {r2.outcome}), Python peak {peak:.2f} MiB, max RSS growth {rss:.1f} MiB")
    finally:
        for c in held:
            c.close()
        for mg in managers.values():
            mg.stop_all()
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
