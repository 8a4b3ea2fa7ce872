"""Bench: beat's dispatch rate and memory at fleet scale, and the fleet file's load time.

    .venv/bin/python bench/beat.py [--targets 1000,10000,100000] [--seconds 10]

For each fleet size, in a fresh process (so RSS figures are its own), against a
redis-server of our own on a free port as the broker:

- load: ``load_fleet`` of a generated fleet file (redis targets, each with a name,
  endpoint, categories and a password reference): time and RSS growth;
- beat: ``FleetScheduler`` built on that file (RSS growth per target), then ticked as
  ``celery beat`` ticks it for ``--seconds`` with an interval short enough that every
  target is always due (``--interval``, default 0.2 s): the messages that reached the
  broker per second is the dispatch capacity;
- reference: Celery's own ``send_task`` of the same diagnose message on one producer (what
  Celery's beat calls per entry), in a loop, in the same process, for a third of the
  window. Printed: our rate / its rate, and our rate at each size / at the first size
  (flat = 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _util import RedisServer, rss_mb  # noqa: E402


def write_fleet(path: Path, n: int, interval: float, health: float) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"defaults: {{interval: {interval}, health_interval: {health}}}\n")
        f.write("targets:\n")
        for i in range(n):
            f.write(f"  - name: cache-{i:06d}\n    type: redis\n"
                    f"    endpoints: [\"127.{i // 65536 % 256}.{i // 256 % 256}.{i % 256 or 1}:6379\"]\n"
                    f"    auth: {{password: env:CACHE_PASSWORD}}\n"
                    f"    categories: [memory, performance]\n")


def queued(server: RedisServer) -> int:
    return sum(int(server.client.llen(q)) for q in ("redis", "celery"))


def write_json(path: Path, n: int, interval: float, health: float) -> None:
    targets = [{"name": f"cache-{i:06d}", "type": "redis",
                "endpoints": [f"127.{i // 65536 % 256}.{i // 256 % 256}.{i % 256 or 1}:6379"],
                "auth": {"password": "env:CACHE_PASSWORD"}, "categories": ["memory", "performance"]}
               for i in range(n)]
    path.write_text(json.dumps({"defaults": {"interval": interval, "health_interval": health},
                                "targets": targets}, indent=1))


def one(n: int, broker: str, seconds: float, interval: float, health: float,
        as_json: bool = False) -> dict[str, Any]:
    from kubestack_ai.scheduler import load_fleet
    from kubestack_ai.scheduler.beat import FleetScheduler
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="ksa-beat-bench-"))
    fleet = tmp / ("fleet.json" if as_json else "fleet.yaml")
    (write_json if as_json else write_fleet)(fleet, n, interval, health)
    rss0 = rss_mb()
    t0 = time.perf_counter()
    load_fleet(fleet)
    load_s = time.perf_counter() - t0
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0

    app = create_app(Settings.from_env({"KSA_HOME": str(tmp), "KSA_FLEET": str(fleet),
                                        "KSA_BROKER_URL": broker,
                                        "KSA_BEAT_LOCK_TTL": "30"}))
    import redis

    r = redis.Redis.from_url(broker)
    r.delete("redis", "celery")
    rss1 = rss_mb()
    t0 = time.perf_counter()
    s = FleetScheduler(app=app, lazy=False)
    setup_s = time.perf_counter() - t0
    rss2 = rss_mb()

    # beat's loop, as celery.beat.Service.start runs it
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        wait = s.tick()
        if wait and wait > 0:
            time.sleep(min(wait, seconds - (time.perf_counter() - t0)) if
                       seconds > time.perf_counter() - t0 else 0)
    elapsed = time.perf_counter() - t0
    sent = sum(int(r.llen(q)) for q in ("redis", "celery"))
    rss3 = rss_mb()
    s.close()
    r.delete("redis", "celery")

    # the floor: Celery's send_task of one such message, one producer, in a loop
    target = {"name": "cache-000000", "endpoints": ["127.0.0.1:6379"],
              "auth": {"password": "env:CACHE_PASSWORD"}}
    kwargs = {"target": target, "categories": ["memory", "performance"], "force": True,
              "cache_ttl": interval}
    floor_n = 0
    with app.producer_or_acquire() as producer:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            for _ in range(100):
                app.send_task("diagnose.redis", kwargs=kwargs, producer=producer,
                              expires=interval)
            floor_n += 100
        floor_s = time.perf_counter() - t0
    r.delete("redis", "celery")
    r.close()
    app.close()
    return {"targets": n, "load_s": load_s, "load_rss_mb": load_peak,
            "setup_s": setup_s, "beat_rss_mb": rss2 - rss1, "tick_rss_mb": rss3 - rss2,
            "sent": sent, "elapsed": elapsed, "rate": sent / elapsed,
            "floor_rate": floor_n / floor_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="1000,10000,100000")
    ap.add_argument("--json", action="store_true", help="write the fleet files as .json")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--health-interval", type=float, default=0.0)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--broker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.broker, a.seconds, a.interval, a.health_interval,
                             a.json)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(tmp)
        try:
            print(f"{'targets':>8} {'load s':>7} {'load MB':>8} {'setup s':>8} "
                  f"{'KB/target':>9} {'sends/s':>8} {'vs first':>8} {'send_task/s':>11} "
                  f"{'ours/it':>7}")
            first = None
            for n in (int(x) for x in a.targets.split(",")):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", str(n), "--broker", server.url,
                     "--seconds", str(a.seconds), "--interval", str(a.interval),
                     "--health-interval", str(a.health_interval)] + (["--json"] if a.json else []),
                    capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
                if out.returncode:
                    print(out.stderr[-3000:])
                    return 1
                d = json.loads(out.stdout.strip().splitlines()[-1])
                first = first or d["rate"]
                print(f"{n:>8} {d['load_s']:>7.2f} {d['load_rss_mb']:>8.1f} "
                      f"{d['setup_s']:>8.2f} {d['beat_rss_mb'] * 1024 / n:>9.2f} "
                      f"{d['rate']:>8.0f} {d['rate'] / first:>7.2f}x {d['floor_rate']:>11.0f} "
                      f"{d['rate'] / d['floor_rate']:>6.1f}x", flush=True)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
