"""1,000 targets through Celery on the Redis broker: fresh diagnoses/s, cached results/s,
and the per-task cost against a no-op Celery task measured in the same run.

    .venv/bin/python bench/celery_fleet.py [--targets 1000] [--runs 3] [--type tcp|redis]

Starts its own prefork worker (-c 2) on redis://127.0.0.1:6379/13 (a db of its own on
the machine's Redis) with SQLite storage in a temp dir. Each run sends, in groups of
--chunk tasks interleaved so load drift hits every kind alike: ksa.noop (the floor:
broker + worker + result backend, nothing else), ksa.noop_limited (the same under soft
and hard time limits), diagnose.<type> with force (fresh: plugin reused with its
connection, storage reads, the run written) and diagnose.<type> without force on the
same targets (served from the result cache). Also measured: the
same diagnoses in this process through PluginManager (no Celery: the plugin's own cost).
Prints medians over the runs and the ratios to the no-op rate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/storage.py would shadow the storage package (a script's directory comes first)
sys.path.insert(0, str(ROOT))
BROKER = "redis://127.0.0.1:6379/13"


def start_worker(home: Path, env: dict[str, str], concurrency: int) -> subprocess.Popen[bytes]:
    log = open(home / "worker.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "kubestack_ai.workers", "worker",
                             "--loglevel", os.environ.get("BENCH_LOGLEVEL", "warning"),
                             "-c", str(concurrency),
                             "--without-mingle", "--without-gossip",
                             "-n", f"bench-{os.getpid()}@%h"],
                            env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    return proc


def timed_group(app: Any, sigs: list[Any]) -> tuple[float, list[Any]]:
    from celery import group

    t0 = time.perf_counter()
    res = group(sigs).apply_async()
    out = res.join_native(timeout=600)
    wall = time.perf_counter() - t0
    res.forget()
    return wall, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=200, help="tasks per group, kinds interleaved")
    ap.add_argument("--type", default=None, help="redis (when its plugin is installed) or tcp")
    args = ap.parse_args()

    import redis

    from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager, Sandbox, builtin_ids

    mtype = args.type or ("redis" if "redis-diagnostics" in builtin_ids() else "tcp")
    home = Path(tempfile.mkdtemp(prefix="ksa-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env.update({"KSA_HOME": str(home), "KSA_BROKER_URL": BROKER,
                "KSA_DATABASE_URL": f"sqlite:///{home}/ksa.db", "KSA_CACHE_TTL": "3600",
                "KSA_BENCH_TASKS": "1"})  # registers ksa.noop / ksa.noop_limited
    os.environ.update(env)
    r = redis.Redis.from_url(BROKER)
    r.flushdb()  # our own db number only
    from kubestack_ai.storage import Store
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    Store().migrate()
    app = create_app(Settings.from_env(env))
    worker = start_worker(home, env, args.concurrency)
    try:
        t0 = time.monotonic()
        while app.control.ping(timeout=0.5) == [] and time.monotonic() - t0 < 60:
            time.sleep(0.5)
        targets = [{"name": f"t{i:04d}", "endpoints": ["127.0.0.1:6379"]}
                   for i in range(args.targets)]
        # warm-up: every child loads the plugin and opens storage once
        timed_group(app, [app.signature(f"diagnose.{mtype}", kwargs={"target": t, "force": True})
                          for t in targets[:50]])
        rows: dict[str, list[float]] = {"noop": [], "noop_limited": [], "fresh": [], "cached": [],
                                        "inproc": []}
        chunk = max(1, min(args.chunk, len(targets)))
        for run in range(args.runs):
            # interleaved in chunks so that the shared machine's load drifts over every
            # kind alike: noop, noop under limits, fresh, then cached on the same targets
            spent = {"noop": 0.0, "noop_limited": 0.0, "fresh": 0.0, "cached": 0.0}
            for start in range(0, len(targets), chunk):
                part = targets[start:start + chunk]
                wall, _ = timed_group(app, [app.signature("ksa.noop") for _ in part])
                spent["noop"] += wall
                wall, _ = timed_group(app, [app.signature("ksa.noop_limited") for _ in part])
                spent["noop_limited"] += wall
                wall, out = timed_group(app, [app.signature(f"diagnose.{mtype}",
                                                            kwargs={"target": t, "force": True})
                                              for t in part])
                assert all(o["outcome"] == "completed" and o["stored"] for o in out), out[:2]
                spent["fresh"] += wall
                wall, out = timed_group(app, [app.signature(f"diagnose.{mtype}",
                                                            kwargs={"target": t})
                                              for t in part])
                assert all(o["cached"] for o in out), [o for o in out if not o["cached"]][:2]
                spent["cached"] += wall
            for kind, secs in spent.items():
                rows[kind].append(len(targets) / secs)
            m = PluginManager(sandbox=Sandbox(threaded=False))  # as in a worker child
            ts = [MiddlewareTarget.model_validate({"type": mtype, **t}) for t in targets[:200]]
            t1 = time.perf_counter()
            for t in ts:
                m.diagnose(t, DiagnoseOptions())
            rows["inproc"].append(len(ts) / (time.perf_counter() - t1))
            m.stop_all()
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rows.items()),
                  flush=True)
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"\n{args.targets} {mtype} targets, {args.runs} runs, worker prefork "
              f"-c {args.concurrency}, Redis broker + result backend, SQLite storage")
        print(f"  no-op Celery task          {med['noop']:8.0f} tasks/s   (floor)")
        print(f"  no-op under time limits    {med['noop_limited']:8.0f} tasks/s   "
              f"per-task time {med['noop'] / med['noop_limited']:.2f}x no-op")
        print(f"  fresh diagnose.{mtype:<10} {med['fresh']:8.0f} tasks/s   "
              f"per-task time {med['noop'] / med['fresh']:.2f}x no-op")
        print(f"  cached diagnose.{mtype:<9} {med['cached']:8.0f} tasks/s   "
              f"per-task time {med['noop'] / med['cached']:.2f}x no-op")
        print(f"  in-process diagnose (no Celery, one process, 200 of the targets) "
              f"{med['inproc']:8.0f}/s")
        return 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        r.flushdb()
        r.close()


if __name__ == "__main__":
    sys.exit(main())
