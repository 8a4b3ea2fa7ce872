"""The web view at fleet scale: ``/`` and ``/api/targets`` p50/p95 for 10,000 targets with
a week of history on PostgreSQL, ``/metrics`` time and size, against the HTTP floor
(``/healthz``: the same server, no storage) measured in the same run.

    .venv/bin/python bench/web.py [--targets 10000] [--hours 168] [--every 60] [--requests 60]
                                  [--fleet]

``--fleet`` declares the targets as a fleet (``Store.set_fleet``, as ``ksa run``'s beat
does), all but every 100th, which are then one-off targets shown apart.

Creates its own database on the machine's PostgreSQL (127.0.0.1:5432, dropped at the
end), migrates it, and fills it in SQL: --targets targets with a run every --every
minutes for --hours hours (default: a week, hourly: 1.68 M runs) and their latest rows
(80 % healthy, 12 % warning, 5 % critical, 3 % unknown; 2 % stale; warning and critical
targets with 1-3 findings). Then runs ``ksa serve`` on it and times requests from this
process, interleaved (floor, page, API, metrics) so load drift hits each alike. /metrics
is served from a snapshot rebuilt in the background; the snapshot's build is timed too,
after the server has stopped, in a process of its own: with ``--against DIR`` (another
checkout, e.g. main's) that tree's build is timed too, interleaved with this one's, on the
same database, and the two expositions compared line for line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from kubestack_ai.storage import FleetMember, Store  # noqa: E402
from tests.conftest import free_port  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

FINDING = {"code": "redis.memory.usage_high", "category": "memory", "severity": "{sev}",
           "title": "Memory usage 97.0% of maxmemory",
           "suggestion": "Raise maxmemory, shrink the data set (TTLs, smaller values) or shard."}


def fill(url: str, targets: int, hours: int, every: int) -> float:
    t0 = time.perf_counter()
    result = json.dumps({"plugin_id": "redis-diagnostics", "plugin_version": "1.0.0",
                         "target_name": "x", "status": "healthy",
                         "started_at": "2026-11-30T00:00:00Z", "duration": 0.01,
                         "findings": [], "metrics": {"used_memory": 1000000,
                                                     "connected_clients": 12}})
    runs_per_target = hours * 60 // every
    engine = create_engine(url)
    with engine.begin() as c:
        c.execute(text("""
            INSERT INTO ksa_run (run_id, target_key, plugin_id, categories, status, outcome,
                                 started_at, duration, recorded_at, result)
            SELECT 'r-' || t || '-' || n, 'redis:cache-' || lpad(t::text, 5, '0'),
                   'redis-diagnostics', '', 'healthy', 'completed',
                   now() at time zone 'utc' - (n * :every || ' minutes')::interval, 0.012,
                   now() at time zone 'utc' - (n * :every || ' minutes')::interval, :result
            FROM generate_series(1, :targets) t, generate_series(0, :runs - 1) n
        """), {"targets": targets, "runs": runs_per_target, "every": every, "result": result})
        f = json.dumps([FINDING]).replace("{sev}", "%s")
        c.execute(text("""
            INSERT INTO ksa_target_latest (target_key, type, plugin_id, run_id, status, rank,
                outcome, started_at, started_ts, duration, status_since, status_runs,
                prev_started_at, stale_ts, updated_at, worst_code, worst_title, findings,
                n_completed, n_timed_out, n_killed, n_failed)
            SELECT k, 'redis', 'redis-diagnostics', 'r-' || t || '-0', s,
                   CASE s WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 WHEN 'unknown' THEN 1
                          ELSE 0 END,
                   'completed', last, extract(epoch from last), 0.012, last - interval '3 hours', 3,
                   last - (:every || ' minutes')::interval,
                   extract(epoch from last) + CASE WHEN t % 50 = 0 THEN 0 ELSE 120 * :every END,
                   last,
                   CASE WHEN s IN ('warning', 'critical') THEN 'redis.memory.usage_high' END,
                   CASE WHEN s IN ('warning', 'critical') THEN 'Memory usage 97.0% of maxmemory'
                        END,
                   CASE WHEN s IN ('warning', 'critical') THEN replace(:f, '%s', s) ELSE '[]' END,
                   :runs, 0, 0, 0
            FROM (SELECT t, 'redis:cache-' || lpad(t::text, 5, '0') AS k,
                         CASE WHEN t % 100 < 80 THEN 'healthy' WHEN t % 100 < 92 THEN 'warning'
                              WHEN t % 100 < 97 THEN 'critical' ELSE 'unknown' END AS s,
                         now() at time zone 'utc' AS last
                  FROM generate_series(1, :targets) t) x
        """), {"targets": targets, "runs": runs_per_target, "every": every, "f": f})
        c.execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - t0


def timed(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
    return (time.perf_counter() - t0) * 1000, len(body)


BUILD = """
import hashlib, sys, time
from kubestack_ai.storage import Store
from kubestack_ai.web.metrics import render
store = Store(sys.argv[1])
for _ in sys.stdin:
    t0 = time.perf_counter()
    body = render(store)
    ms = (time.perf_counter() - t0) * 1000
    lines = body.splitlines()
    digest = hashlib.sha256(b"\\n".join(sorted(lines))).hexdigest()[:12]
    print(ms, len(body), sum(not x.startswith(b"#") for x in lines), digest, flush=True)
"""


def builds(url: str, trees: dict[str, Path], n: int) -> None:
    """Time ``render`` of each tree (run from the tree's directory, so that its package is
    the one imported), one build of each in turn, after a warm-up build."""
    procs = {what: subprocess.Popen([sys.executable, "-c", BUILD, url], cwd=tree, text=True,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    env={k: v for k, v in os.environ.items()
                                         if k != "PYTHONPATH"})
             for what, tree in trees.items()}
    times: dict[str, list[float]] = {what: [] for what in trees}
    last: dict[str, list[str]] = {}
    try:
        for i in range(n + 1):
            for what, p in procs.items():
                assert p.stdin is not None and p.stdout is not None
                p.stdin.write("\n")
                p.stdin.flush()
                last[what] = p.stdout.readline().split()
                if i:  # the first is the warm-up
                    times[what].append(float(last[what][0]))
    finally:
        for p in procs.values():
            assert p.stdin is not None
            p.stdin.close()
            p.wait(30)
    print(f"\n/metrics snapshot build, {n} interleaved builds each (process of its own):")
    for what, xs in times.items():
        _, size, samples, digest = last[what]
        print(f"  {what:40} p50 {statistics.median(xs):6.0f} ms  min {min(xs):5.0f}  "
              f"max {max(xs):5.0f}  {size} bytes, {samples} samples, lines {digest}")
    if len({v[3] for v in last.values()}) > 1:
        print("  the expositions differ (sorted lines)")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--hours", type=int, default=168)
    ap.add_argument("--every", type=int, default=60, help="minutes between runs in history")
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--builds", type=int, default=9, help="/metrics snapshot builds timed")
    ap.add_argument("--fleet", action="store_true",
                    help="declare the targets a fleet (all but every 100th: one-off)")
    ap.add_argument("--against", type=Path, help="another checkout whose /metrics build is "
                    "timed alongside this one's (e.g. /work/main)")
    args = ap.parse_args()
    name = f"ksa_bench_web_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    proc = None
    try:
        store = Store(url)
        store.migrate()
        store.dispose()
        took = fill(url, args.targets, args.hours, args.every)
        runs = args.targets * (args.hours * 60 // args.every)
        print(f"filled {args.targets} targets, {runs} runs in {took:.1f} s")
        if args.fleet:
            store = Store(url)
            t0 = time.perf_counter()
            store.set_fleet(FleetMember(f"redis:cache-{t:05d}", "redis", (f"10.0.0.{t % 250}:"
                                        f"{6379 + t // 250}",), args.every * 60.0)
                            for t in range(1, args.targets + 1) if t % 100)
            print(f"declared the fleet in {time.perf_counter() - t0:.2f} s")
            store.dispose()
        port = free_port()
        env = {**os.environ, "KSA_DATABASE_URL": url}
        proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "serve", "--port",
                                 str(port)], env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                timed(base + "/healthz")
                break
            except OSError:
                time.sleep(0.1)
        paths = {"floor /healthz": "/healthz", "/": "/", "/api/targets": "/api/targets",
                 "/?status=critical": "/?status=critical", "/?q=cache-0999": "/?q=cache-0999",
                 "/targets/<key>": "/targets/redis%3Acache-00001",
                 "/api/targets/<key>/history": "/api/targets/redis%3Acache-00001/history",
                 "/plugins": "/plugins",
                 "/metrics": "/metrics"}
        times: dict[str, list[float]] = {k: [] for k in paths}
        sizes: dict[str, int] = {}
        for p in paths.values():  # warm-up: connections, template compilation
            timed(base + p)
        for _ in range(args.requests):
            for what, p in paths.items():
                if what == "/metrics" and len(times[what]) >= 20:
                    continue
                ms, size = timed(base + p)
                times[what].append(ms)
                sizes[what] = size
        floor = statistics.median(times["floor /healthz"])
        print(f"\n{'what':32} {'p50 ms':>8} {'p95 ms':>8} {'p50/floor':>10} {'bytes':>10}")
        for what, xs in times.items():
            p50 = statistics.median(xs)
            print(f"{what:32} {p50:8.1f} {pct(xs, 95):8.1f} {p50 / floor:10.1f} {sizes[what]:10d}")
        print(f"\n(n = {args.requests} each, /metrics {len(times['/metrics'])}; "
              f"{args.targets} targets)")
        proc.terminate()
        proc.wait(10)
        proc = None
        # what a snapshot costs to build (the background thread's work, or a cold scrape)
        trees = {f"this tree ({ROOT})": ROOT}
        if args.against:
            trees[f"against ({args.against.resolve()})"] = args.against.resolve()
        builds(url, trees, args.builds)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
