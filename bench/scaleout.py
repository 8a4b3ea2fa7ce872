"""Bench: N separate ``celery worker`` processes against one Redis broker and one
PostgreSQL store, diagnosing a 10,000-target fleet: where does it stop scaling?

    .venv/bin/python bench/scaleout.py [--workers 1,2,4] [--tasks 4000] [--targets 10000]

Starts its own redis-server as broker and result backend (a free port), a database of
its own on the machine's PostgreSQL (dropped at the end), and ``--servers`` small
redis-servers as the fleet's targets (10,000 target names spread over them: each is a
full diagnosis; the plugin shares one client per server and worker child). For each N,
N worker processes (``celery -A kubestack_ai.workers worker -c 1 -Q redis``, each its
own process as separate machines would be) consume ``--tasks`` forced diagnoses,
published in one batch the way beat publishes; the clock runs from the publish to the
last run stored. Printed per N: diagnoses/s in all and per worker process, the broker's
commands/s and CPU, the database's commits/s and rows written/s, the machine's CPU busy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _util import RedisServer  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (a worker and its pool child)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    total = cpu_seconds(pid)
    for child in out.split():
        try:
            total += cpu_seconds(int(child))
        except OSError:
            pass
    return total


def machine_busy() -> tuple[float, float]:
    parts = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def pg_stats(engine: Any, db: str) -> tuple[int, int]:
    from sqlalchemy import text

    with engine.connect() as c:
        row = c.execute(text("SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
                             "FROM pg_stat_database WHERE datname = :d"), {"d": db}).one()
    return int(row[0]), int(row[1])


def runs_stored(engine: Any) -> int:
    from sqlalchemy import text

    with engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM ksa_run")).scalar() or 0)


def start_workers(n: int, env: dict[str, str], logdir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = open(logdir / f"worker{i}.log", "wb")  # noqa: SIM115 (lives with the worker)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "kubestack_ai.workers", "worker",
             "--loglevel", "warning", "-c", "1", "-Q", "redis", "-n", f"scale{i}-{os.getpid()}@%h",
             "--without-mingle", "--without-gossip", "--without-heartbeat"],
            env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT))
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def publish(app: Any, targets: list[dict[str, Any]], n: int) -> None:
    """n forced diagnoses over the fleet, batched on one producer as beat sends them."""
    amqp = app.amqp
    route = amqp.router.route({}, "diagnose.redis", (), {})
    with app.producer_or_acquire() as producer, producer.batch(500):
        for i in range(n):
            kwargs = {"target": targets[i % len(targets)], "categories": [], "force": True,
                      "cache_ttl": 60}
            msg = amqp.create_task_message(str(uuid.uuid4()), "diagnose.redis", (), kwargs,
                                           argsrepr="()", kwargsrepr="{}")
            amqp.send_task_message(producer, "diagnose.redis", msg, **route)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--tasks", type=int, default=4000)
    ap.add_argument("--targets", type=int, default=10_000)
    ap.add_argument("--servers", type=int, default=4)
    a = ap.parse_args()

    from sqlalchemy import create_engine, text

    from kubestack_ai.storage import Store
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    db = f"ksa_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {db}"))
    db_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + db
    tmp = Path(tempfile.mkdtemp(prefix="ksa-scaleout-"))
    broker = RedisServer(tmp)
    servers = [RedisServer(tmp) for _ in range(a.servers)]
    store = Store(db_url)
    store.migrate()
    engine = create_engine(db_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env.update({"KSA_HOME": str(tmp), "KSA_BROKER_URL": broker.url,
                "KSA_RESULT_BACKEND": broker.url.replace("/0", "/1"),
                "KSA_DATABASE_URL": db_url, "KSA_PREFETCH": "4", "PYTHONPATH": str(ROOT)})
    app = create_app(Settings.from_env(env))
    targets = [{"name": f"t{i:05d}", "endpoints": [f"127.0.0.1:{servers[i % len(servers)].port}"]}
               for i in range(a.targets)]
    print(f"{a.targets} targets on {a.servers} redis-servers; {a.tasks} forced diagnoses per "
          f"step; broker {broker.url}; store postgresql/{db}")
    print(f"{'workers':>7} {'diag/s':>7} {'per wkr':>7} {'wkr CPU%':>8} {'broker cmd/s':>12} "
          f"{'broker CPU%':>11} {'db commit/s':>11} {'db rows/s':>9} {'machine busy':>12}")
    try:
        for n in (int(x) for x in a.workers.split(",")):
            with engine.begin() as c:
                c.execute(text("DELETE FROM ksa_run"))
                c.execute(text("DELETE FROM ksa_result_cache"))
            procs = start_workers(n, env, tmp)
            try:
                # warm up: every worker child imported, connected and diagnosing
                publish(app, targets, 20 * n)
                t_end = time.time() + 120
                while runs_stored(engine) < 20 * n and time.time() < t_end:
                    time.sleep(0.2)
                base = runs_stored(engine)
                cmds0 = int(broker.client.info("stats")["total_commands_processed"])
                bcpu0, wcpu0 = cpu_seconds(broker.proc.pid), sum(tree_cpu(p.pid) for p in procs)
                commits0, rows0 = pg_stats(engine, db)
                busy0, all0 = machine_busy()
                t0 = time.perf_counter()
                publish(app, targets, a.tasks)
                t_end = time.time() + 600
                while runs_stored(engine) < base + a.tasks and time.time() < t_end:
                    time.sleep(0.1)
                dt_s = time.perf_counter() - t0
                done = runs_stored(engine) - base
                cmds1 = int(broker.client.info("stats")["total_commands_processed"])
                bcpu1, wcpu1 = cpu_seconds(broker.proc.pid), sum(tree_cpu(p.pid) for p in procs)
                commits1, rows1 = pg_stats(engine, db)
                busy1, all1 = machine_busy()
            finally:
                stop(procs)
            rate = done / dt_s
            print(f"{n:>7} {rate:>7.0f} {rate / n:>7.0f} {100 * (wcpu1 - wcpu0) / dt_s:>8.0f} "
                  f"{(cmds1 - cmds0) / dt_s:>12.0f} {100 * (bcpu1 - bcpu0) / dt_s:>11.0f} "
                  f"{(commits1 - commits0) / dt_s:>11.0f} {(rows1 - rows0) / dt_s:>9.0f} "
                  f"{100 * (busy1 - busy0) / (all1 - all0):>11.0f}%", flush=True)
    finally:
        app.close()
        store.dispose()
        engine.dispose()
        for s in [broker, *servers]:
            s.stop()
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
