"""Bench: storage size per target per day on PostgreSQL, and what pruning costs.

    .venv/bin/python bench/retention.py [--targets 50] [--runs 200]

In a database of its own on the machine's PostgreSQL (dropped at the end):

1. ``--targets`` x ``--runs`` runs through ``Store.record_run``, each a real Redis
   diagnosis result (``ksa diagnose redis 127.0.0.1:6379 --json`` once, read-only, or the
   storage bench's 3 KB sample when that Redis is not there), spread over two days;
   after VACUUM ANALYZE: ``pg_total_relation_size`` (table + TOAST + indexes) of the
   history per run, times the runs a target makes a day at 60 s / 300 s intervals;
2. ``Store.prune`` of all of it (rolled up: two rollup rows per target), rows/s, against
   the floor: a bare ``DELETE ... WHERE started_at < now`` of the same rows loaded again;
   the rollup table's size per target per day.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def real_result() -> str:
    out = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "diagnose", "redis",
                          "127.0.0.1:6379", "--json"], capture_output=True, text=True,
                         cwd=str(ROOT), timeout=60)
    if out.stdout.strip().startswith("{"):
        return out.stdout
    from storage import sample  # the storage bench's result

    return sample().model_dump_json()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()

    from sqlalchemy import create_engine, text

    from kubestack_ai.plugins.models import DiagnosticResult
    from kubestack_ai.storage import Store

    body = real_result()
    base = DiagnosticResult.model_validate_json(body)
    db = f"ksa_retention_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {db}"))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    store = Store(url)
    store.migrate()
    eng = create_engine(url, isolation_level="AUTOCOMMIT")

    def size(table: str) -> int:
        with eng.connect() as c:
            c.execute(text(f"VACUUM ANALYZE {table}"))
            return int(c.execute(text(f"SELECT pg_total_relation_size('{table}')")).scalar() or 0)

    def load() -> int:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
        n = 0
        for r in range(a.runs):
            at = start + dt.timedelta(seconds=r * 2 * 86400 / a.runs)
            res = base.model_copy(update={"started_at": at})
            for t in range(a.targets):
                store.record_run(str(uuid.uuid4()), f"redis:t{t}", base.plugin_id, (), res,
                                 ttl=None)
                n += 1
        return n

    try:
        empty = size("ksa_run")
        n = load()
        per_run = (size("ksa_run") - empty) / n
        t0 = time.perf_counter()
        report = store.prune(older_than=dt.timedelta(0))
        prune_s = time.perf_counter() - t0
        rollups = size("ksa_rollup_daily")
        with eng.connect() as c:
            nroll = int(c.execute(text("SELECT count(*) FROM ksa_rollup_daily")).scalar() or 0)
        load()
        t0 = time.perf_counter()
        with eng.connect() as c:
            floor_n = c.execute(text("DELETE FROM ksa_run WHERE started_at < now()")).rowcount
        floor_s = time.perf_counter() - t0
    finally:
        store.dispose()
        eng.dispose()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        admin.dispose()

    print(f"result JSON {len(body)} B ({len(base.findings)} findings, {len(base.metrics)} "
          f"metrics); {n} runs of {a.targets} targets")
    print(f"history on PostgreSQL: {per_run:,.0f} B per run (table + TOAST + indexes)")
    for interval in (60, 300):
        print(f"  per target per day at {interval:>3} s: {per_run * 86400 / interval / 2**20:.1f} MiB"
              f"; 14 days (KSA_HISTORY_DAYS): {per_run * 86400 / interval * 14 / 2**30:.2f} GiB")
    print(f"rollups: {nroll} rows, {rollups / max(nroll, 1):,.0f} B per target per day "
          f"(incl. indexes)")
    print(f"prune (rolled up): {report.runs / prune_s:,.0f} runs/s; floor (bare DELETE): "
          f"{floor_n / floor_s:,.0f} runs/s; ratio {floor_n / floor_s / (report.runs / prune_s):.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
