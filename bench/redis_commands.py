"""Which commands each side of bench/redis_diagnose.py sends in one run, counted on the
bench's own seeded server: INFO commandstats deltas around each run (MONITOR does not
show admin commands: CONFIG, SLOWLOG, LATENCY, CLIENT), and MONITOR from a second
connection for the arguments of the commands it shows.

    .venv/bin/python bench/redis_commands.py [--warm 12]

After ``--warm`` interleaved warm-up runs (so the worker and the CLI carry history as in
the bench), one run each of: the floor, the worker path, the CLI path (history), the CLI
first run (no history). Prints each one's commands, counted by name.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis
from redis_diagnose import Server, floor_call, floor_scan, seed  # noqa: E402

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager, Sandbox, Snapshot
from kubestack_ai.plugins.redis.connection import quiet_handshake
from kubestack_ai.plugins.redis.constants import DEFAULTS

MARK = "ksa-bench-mark"


def commandstats(r: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"])
            for k, v in r.info("commandstats").items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warm", type=int, default=12)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ksa-bench-")
    srv = Server(tmp)
    try:
        seed(srv.client)
        t = MiddlewareTarget(type="redis", endpoints=(f"127.0.0.1:{srv.port}",),
                             thresholds={"bigkeys_scan_keys": 0})
        t_scan = MiddlewareTarget(type="redis", endpoints=(f"127.0.0.1:{srv.port}",))
        scan_keys = int(DEFAULTS["bigkeys_scan_keys"])
        scan_history: tuple[Snapshot, ...] = ()
        cursor = [0]  # the floor's walk resumes as the plugin's does

        def scan_floor() -> None:
            floor_call(fast, 128)
            keys = scan_keys if scan_history else int(DEFAULTS["bigkeys_full_scan_keys"])
            cursor[0] = floor_scan(fast, keys, cursor[0])

        def scan_worker() -> None:
            nonlocal scan_history
            last = worker.diagnose(t_scan, DiagnoseOptions(history=scan_history))
            scan_history = (*scan_history[-9:], Snapshot(at=last.started_at,
                                                        metrics=last.metrics))
        worker = PluginManager(sandbox=Sandbox(threaded=False))
        worker.load_builtins()
        manager = PluginManager()
        manager.load_builtins()
        fast = redis.Redis(port=srv.port, decode_responses=True, **quiet_handshake())
        history: tuple[Snapshot, ...] = ()
        cli_history: tuple[Snapshot, ...] = ()
        for _ in range(args.warm):
            floor_call(fast, 128)
            last = worker.diagnose(t, DiagnoseOptions(history=history))
            history = (*history[-9:], Snapshot(at=last.started_at, metrics=last.metrics))
            last = manager.diagnose(t, DiagnoseOptions(history=cli_history))
            cli_history = (*cli_history[-9:], Snapshot(at=last.started_at,
                                                      metrics=last.metrics))
            manager.diagnose(t)
            scan_floor()
            scan_worker()
        lines: list[str] = []
        mon = redis.Redis(port=srv.port, decode_responses=True, **quiet_handshake())
        marker = redis.Redis(port=srv.port, decode_responses=True, **quiet_handshake())
        ready = threading.Event()

        def listen() -> None:
            with mon.monitor() as m:
                ready.set()
                for ev in m.listen():
                    lines.append(ev["command"])
                    if ev["command"] == f"ECHO {MARK}-end":
                        return

        th = threading.Thread(target=listen, daemon=True)
        th.start()
        ready.wait()
        time.sleep(0.2)
        steps = [("floor", lambda: floor_call(fast, 128)),
                 ("worker path (history)", lambda: worker.diagnose(
                     t, DiagnoseOptions(history=history))),
                 ("CLI path (history)", lambda: manager.diagnose(
                     t, DiagnoseOptions(history=cli_history))),
                 ("CLI first run (no history)", lambda: manager.diagnose(t)),
                 ("floor + key sample, run 1", scan_floor),
                 ("worker path + key sample (history), run 1", scan_worker),
                 ("floor + key sample, run 2", scan_floor),
                 ("worker path + key sample (history), run 2", scan_worker)]
        stats: dict[str, collections.Counter[str]] = {}
        for label, fn in steps:
            marker.echo(f"{MARK}-{label}")
            before = commandstats(marker)
            fn()
            after = commandstats(marker)
            delta = collections.Counter({k: v - before.get(k, 0) for k, v in after.items()})
            delta["info"] -= 1  # our own INFO commandstats
            stats[label] = +delta
        marker.echo(f"{MARK}-end")
        th.join(10)
        current = None
        per: dict[str, list[str]] = collections.defaultdict(list)
        for cmd in lines:
            if cmd.startswith(f"ECHO {MARK}-"):
                current = cmd[len(f"ECHO {MARK}-"):]
                continue
            if current:
                per[current].append(cmd)
        for label, _ in steps:
            cmds = [c for c in per[label] if c != "INFO commandstats"]
            print(f"## {label}: {sum(stats[label].values())} commands (commandstats)")
            for c, n in sorted(stats[label].items()):
                print(f"  {n:3d}  {c}")
            print("  MONITOR (non-admin commands only): " + "; ".join(cmds))
        fast.close()
        marker.close()
        worker.stop_all()
        manager.stop_all()
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
