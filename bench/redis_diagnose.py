"""Bench: redis-diagnostics against the raw redis-py floor, measured side by side.

    .venv/bin/python bench/redis_diagnose.py [--runs 300] [--clients 10000] [--slowlog 10000]

1. A full diagnosis (every category) of a small, busy-looking Redis, against the floor:
   the same commands our fetch sends (INFO all, CONFIG GET, SLOWLOG GET 128, LATENCY
   LATEST, CLIENT LIST), pipelined, with redis-py. Interleaved runs; medians and ratios.
2. 10,000 idle clients (CLIENT LIST of 10,000 lines) and a full slow log (10,000
   entries): the diagnosis stays within its deadline, and its Python memory peak
   (tracemalloc) is printed next to the floor's.

Starts its own redis-server processes on free loopback ports and stops them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginConfig, PluginManager, Sandbox
from kubestack_ai.plugins.deadline import Deadline
from kubestack_ai.plugins.redis.constants import CONFIG_KEYS
from kubestack_ai.plugins.redis.plugin import RedisPlugin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tmp: str, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp, *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, decode_responses=True)
        for _ in range(500):
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


def floor_call(r: redis.Redis, slowlog: int) -> None:
    p = r.pipeline(transaction=False)
    p.info("all")
    p.config_get(*CONFIG_KEYS)
    p.execute_command("SLOWLOG", "GET", slowlog)
    p.execute_command("LATENCY LATEST")
    p.client_list()
    p.execute()


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def seed(r: redis.Redis) -> None:
    p = r.pipeline(transaction=False)
    for i in range(2000):
        p.set(f"key:{i}", "v" * 100, ex=3600 if i % 2 else None)
        p.get(f"key:{i}")
        p.get(f"missing:{i}")
        p.hset(f"h:{i % 50}", str(i), i)
    p.execute()
    r.config_set("slowlog-log-slower-than", 0)  # fill the slow log with 128 real entries
    for i in range(200):
        r.get(f"key:{i}")
    r.config_set("slowlog-log-slower-than", 10000)


def bench_full(srv: Server, runs: int) -> dict[str, float]:
    t = MiddlewareTarget(type="redis", endpoints=(f"127.0.0.1:{srv.port}",))
    plugin = RedisPlugin()
    pinging = RedisPlugin()  # PING before every fetch: a fleet's cadence (runs > 1 s apart)
    pinging.init(Deadline(5), PluginConfig(options={"ping_skip_seconds": 0}))
    manager = PluginManager()  # the CLI's: each plugin call in a sandbox thread
    manager.load_builtins()
    worker = PluginManager(sandbox=Sandbox(threaded=False))  # the Celery worker's
    worker.load_builtins()
    raw = redis.Redis(port=srv.port, decode_responses=True)
    floor_call(raw, 128)
    manager.diagnose(t)
    worker.diagnose(t)
    d = Deadline(60)
    plugin.connect(d, t)
    plugin.diagnose(d, DiagnoseOptions())
    pinging.connect(d, t)
    floor, direct, managed, inline, pinged = [], [], [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        floor_call(raw, 128)
        t1 = time.perf_counter()
        dl = Deadline(30)
        plugin.connect(dl, t)
        res = plugin.diagnose(dl, DiagnoseOptions())
        t2 = time.perf_counter()
        manager.diagnose(t)
        t3 = time.perf_counter()
        worker.diagnose(t)
        t4 = time.perf_counter()
        dl = Deadline(30)
        pinging.connect(dl, t)
        pinging.diagnose(dl, DiagnoseOptions())
        pinged.append(time.perf_counter() - t4)
        floor.append(t1 - t0)
        direct.append(t2 - t1)
        managed.append(t3 - t2)
        inline.append(t4 - t3)
    assert not res.errors, res.errors
    raw.close()
    plugin.stop(Deadline(5))
    pinging.stop(Deadline(5))
    manager.stop_all()
    worker.stop_all()
    return {"floor": ms(floor), "direct": ms(direct), "managed": ms(managed),
            "inline": ms(inline), "pinged": ms(pinged),
            "findings": len(res.findings)}


def bench_exporter(srv: Server, runs: int) -> None:
    """The peer: one scrape of prometheus-redis-exporter (Debian package), if installed.
    It exports numbers; it judges nothing. Timed side by side with our diagnosis."""
    exe = shutil.which("prometheus-redis-exporter")
    if exe is None:
        print("\n(prometheus-redis-exporter not installed: peer comparison skipped; "
              "apt-get install prometheus-redis-exporter)")
        return
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([exe, "-redis.addr", f"redis://127.0.0.1:{srv.port}",
                             "-web.listen-address", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                time.sleep(0.05)
        t = MiddlewareTarget(type="redis", endpoints=(f"127.0.0.1:{srv.port}",))
        worker = PluginManager(sandbox=Sandbox(threaded=False))
        worker.load_builtins()
        worker.diagnose(t)
        scrape, ours = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            body = urllib.request.urlopen(url, timeout=5).read()
            t1 = time.perf_counter()
            res = worker.diagnose(t)
            t2 = time.perf_counter()
            scrape.append(t1 - t0)
            ours.append(t2 - t1)
        worker.stop_all()
        print(f"\n## peer: prometheus-redis-exporter, one scrape ({len(body) // 1024} KiB of "
              f"metrics, no findings): {ms(scrape):.3f} ms | our diagnosis (worker path) "
              f"{ms(ours):.3f} ms, {len(res.findings)} findings ({ms(ours) / ms(scrape):.2f}x)")
    finally:
        proc.terminate()
        proc.wait(10)


def raise_nofile(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(n, soft), hard) if hard != resource.RLIM_INFINITY else n
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def bench_big(tmp: str, clients: int, slowlog: int, runs: int) -> None:
    raise_nofile(2 * clients + 1000)  # ours and the server's (it inherits the limit)
    srv = Server(tmp, "--maxclients", str(clients + 100), "--slowlog-max-len", str(slowlog))
    socks = []
    try:
        srv.client.config_set("slowlog-log-slower-than", 0)
        p = srv.client.pipeline(transaction=False)
        for i in range(slowlog + 10):
            p.set(f"slow:{i}", "x" * 64)
        p.execute()
        srv.client.config_set("slowlog-log-slower-than", 10000)
        for _ in range(clients):
            socks.append(socket.create_connection(("127.0.0.1", srv.port)))
        while srv.client.info("clients")["connected_clients"] < clients:
            time.sleep(0.05)
        n_clients = srv.client.info("clients")["connected_clients"]
        n_slow = srv.client.slowlog_len()
        print(f"\n## {n_clients} connected clients, slow log of {n_slow} entries")
        deadline_s = 5.0
        for entries in (128, slowlog):
            t = MiddlewareTarget(type="redis", endpoints=(f"127.0.0.1:{srv.port}",),
                                 thresholds={"slowlog_entries": entries, "idle_seconds": 0})
            manager = PluginManager()
            manager.load_builtins()
            raw = redis.Redis(port=srv.port, decode_responses=True)
            floor_call(raw, entries)
            manager.diagnose(t, timeout=deadline_s)
            floor, ours = [], []
            outcome = None
            for _ in range(runs):  # timed without tracemalloc (it slows Python down ~3x)
                t0 = time.perf_counter()
                floor_call(raw, entries)
                t1 = time.perf_counter()
                res = manager.diagnose(t, timeout=deadline_s)
                t2 = time.perf_counter()
                floor.append(t1 - t0)
                ours.append(t2 - t1)
                outcome = (res.outcome, res.errors, str(res.status))
            tracemalloc.start()
            floor_call(raw, entries)
            peak_f = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            manager.diagnose(t, timeout=deadline_s * 3)
            peak_o = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            raw.close()
            manager.stop_all()
            idle = res.metrics.get("idle_clients")
            print(f"slowlog_entries={entries}: floor {ms(floor):.1f} ms, diagnosis "
                  f"{ms(ours):.1f} ms (ratio {ms(ours) / ms(floor):.2f}x, deadline "
                  f"{deadline_s:g} s, outcome {outcome[0]}, errors {outcome[1] or 'none'}, "
                  f"idle_clients {idle}); Python memory peak: floor "
                  f"{peak_f / 2**20:.1f} MiB, diagnosis {peak_o / 2**20:.1f} MiB")
            assert outcome[0] == "completed" and max(ours) < deadline_s
    finally:
        for s in socks:
            s.close()
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--big-runs", type=int, default=5)
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--slowlog", type=int, default=10_000)
    args = ap.parse_args()
    if not shutil.which("redis-server"):
        sys.exit("redis-server is not installed")
    tmp = tempfile.mkdtemp(prefix="ksa-bench-")
    srv = Server(tmp)
    try:
        seed(srv.client)
        print(f"## full diagnosis (7 categories) vs the pipelined redis-py floor, "
              f"{args.runs} interleaved runs, medians (pid {os.getpid()})")
        for rnd in range(3):
            res = bench_full(srv, args.runs)
            print(f"round {rnd + 1}: floor {res['floor']:.3f} ms | plugin connect+diagnose "
                  f"{res['direct']:.3f} ms ({res['direct'] / res['floor']:.2f}x) | "
                  f"same, PING every run {res['pinged']:.3f} ms "
                  f"({res['pinged'] / res['floor']:.2f}x) | "
                  f"manager, inline sandbox (worker) {res['inline']:.3f} ms "
                  f"({res['inline'] / res['floor']:.2f}x) | manager, threaded sandbox (CLI) "
                  f"{res['managed']:.3f} ms ({res['managed'] / res['floor']:.2f}x) | "
                  f"{res['findings']} findings")
        bench_exporter(srv, max(args.runs // 3, 20))
    finally:
        srv.stop()
    bench_big(tmp, args.clients, args.slowlog, args.big_runs)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
