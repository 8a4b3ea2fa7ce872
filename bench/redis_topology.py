"""Bench: diagnosis time of a Redis Cluster and a Sentinel set with one server hung.

    .venv/bin/python bench/redis_topology.py [--runs 5]

Starts a Cluster (3 masters, 3 replicas, cluster-node-timeout 60 s so that no failover
changes the layout while it measures) and a Sentinel set (master, replica, three
sentinels), all on free loopback ports, and for each:

1. healthy: the floor, the same diagnosis with nothing hung;
2. one server hung (SIGSTOP: a cluster master; then the first sentinel), with the
   default per-node time-out (``socket_timeout`` 2 s) and with 0.5 s;
3. the same with ``socket_timeout`` set to the diagnosis budget (30 s): what every
   run paid before each node had its own time-out (the runs then end at the budget).

Prints medians and the ratio of (hung - healthy) to the per-node time-out: about 1
means one time-out, whatever the number of servers. Every stopped process is resumed,
then every process stopped, at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, Mode, PluginConfig, PluginManager
from tests.redis.util import cluster_port, free_port

CATEGORIES = ("cluster", "sentinel", "replication", "connection")


class Proc:
    def __init__(self, tmp: str, port: int, *args: str, conf: str | None = None) -> None:
        self.port = port
        d = Path(tmp) / f"r{port}"
        d.mkdir()
        if conf is not None:
            (d / "s.conf").write_text(f"port {port}\nbind 127.0.0.1\ndir {d}\n{conf}")
            cmd = ["redis-server", str(d / "s.conf"), "--sentinel"]
        else:
            cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(d), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addr = f"127.0.0.1:{port}"
        c = redis.Redis(port=port, decode_responses=True)
        for _ in range(500):
            try:
                c.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        c.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)


def wait(pred: Any, what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def manager(timeout: float) -> PluginManager:
    m = PluginManager()
    m.load_builtin("redis-diagnostics", PluginConfig(options={"socket_timeout": timeout}))
    return m


def timed(m: PluginManager, t: MiddlewareTarget, runs: int) -> tuple[float, Any]:
    times, r = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        r = m.diagnose(t, DiagnoseOptions(categories=CATEGORIES), timeout=30)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), r


def measure(name: str, t: MiddlewareTarget, victim: Proc, runs: int) -> list[str]:
    rows = []
    fast = {nt: manager(nt) for nt in (2.0, 0.5)}
    healthy, r = timed(fast[2.0], t, runs)
    rows.append(f"| {name} | healthy (floor) | - | {healthy * 1000:.0f} ms | {r.status.value} | - |")
    os.kill(victim.proc.pid, signal.SIGSTOP)
    try:
        for nt, m in fast.items():
            hung, r = timed(m, t, runs)
            rows.append(f"| {name} | one hung | {nt:g} s | {hung * 1000:.0f} ms | "
                        f"{r.status.value} ({len(r.findings)} findings) | "
                        f"{(hung - healthy) / nt:.2f} |")
        old = manager(30.0)
        hung, r = timed(old, t, 1)
        rows.append(f"| {name} | one hung | 30 s (the budget) | {hung * 1000:.0f} ms | "
                    f"{r.status.value} ({len(r.findings)} findings) | {(hung - healthy) / 30:.2f} |")
        for m in (*fast.values(), old):
            m.stop_all()
    finally:
        os.kill(victim.proc.pid, signal.SIGCONT)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        raise SystemExit("redis-server and redis-cli are needed")
    tmp = tempfile.mkdtemp(prefix="ksa-bench-topo-")
    procs: list[Proc] = []
    try:
        nodes = [Proc(tmp, cluster_port(), "--cluster-enabled", "yes", "--cluster-config-file",
                      "nodes.conf", "--cluster-node-timeout", "60000",
                      "--repl-diskless-sync-delay", "0") for _ in range(6)]
        procs += nodes
        subprocess.run(["redis-cli", "--cluster", "create", *(n.addr for n in nodes),
                        "--cluster-replicas", "1", "--cluster-yes"], check=True,
                       capture_output=True, timeout=60)

        def cluster_ok() -> bool:
            for n in nodes:
                with n.client() as c:
                    if c.execute_command("CLUSTER INFO")["cluster_state"] != "ok":
                        return False
                    repl = c.info("replication")
                    if repl["role"] == "slave" and repl["master_link_status"] != "up":
                        return False
            return True

        wait(cluster_ok, "cluster_state ok")
        with nodes[0].client() as c:
            layout = c.execute_command("CLUSTER NODES")
        victim = next(n for n in nodes[1:] if "master" in layout[n.addr]["flags"])
        ct = MiddlewareTarget(type="redis", endpoints=[nodes[0].addr], mode=Mode.CLUSTER)

        master = Proc(tmp, free_port(), "--repl-diskless-sync-delay", "0")
        replica = Proc(tmp, free_port(), "--replicaof", "127.0.0.1", str(master.port))
        conf = (f"sentinel monitor m 127.0.0.1 {master.port} 2\n"
                "sentinel down-after-milliseconds m 60000\n")
        sentinels = [Proc(tmp, free_port(), conf=conf) for _ in range(3)]
        procs += [master, replica, *sentinels]

        def sentinels_ok() -> bool:
            for s in sentinels:
                with s.client() as c:
                    m = c.execute_command("SENTINEL MASTER", "m")
                    if m["num-other-sentinels"] != 2 or m["num-slaves"] != 1:
                        return False
            return True

        wait(sentinels_ok, "the sentinels to know each other")
        st = MiddlewareTarget(type="redis", endpoints=[s.addr for s in sentinels],
                              mode=Mode.SENTINEL, options={"master_name": "m"})
        rows = ["| topology | state | per-node time-out | median diagnosis | result | "
                "(hung - healthy) / time-out |", "|---|---|---|---|---|---|"]
        rows += measure("Cluster, 6 nodes (SIGSTOP a master)", ct, victim, args.runs)
        rows += measure("Sentinel, 3 sentinels (SIGSTOP the first)", st, sentinels[0], args.runs)
        print("\n".join(rows))
    finally:
        for p in procs:
            try:
                os.kill(p.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            p.proc.terminate()
        for p in procs:
            p.proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
