"""An audited action against its floor: ``PluginManager.execute`` of Redis
``slowlog_reset`` (whitelist, parameter schema, connect, the action, two audit writes:
the attempt before, the result after) against redis-py sending the same commands
(SLOWLOG LEN + SLOWLOG RESET) on a warm connection, in the same run; and the same
action without an audit log, to show what the audit costs.

    .venv/bin/python bench/actions.py [--rounds 5] [--n 200]

Starts its own redis-server on a free loopback port; the audit log is SQLite in a temp
dir (the CLI's default). Prints medians of the rounds and ratios to the floor.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from kubestack_ai.plugins import MiddlewareTarget, PluginManager  # noqa: E402
from kubestack_ai.storage import AuditLog, Store  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def per_second(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ksa-bench-actions-"))
    port = free_port()
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                           stdout=subprocess.DEVNULL)
    try:
        r = redis.Redis(port=port)
        for _ in range(100):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        store = Store(f"sqlite:///{tmp}/ksa.db")
        store.migrate()
        sink = AuditLog(store)
        m = PluginManager()
        m.load_builtins()
        t = MiddlewareTarget(type="redis", endpoints=(f"127.0.0.1:{port}",))

        def floor() -> None:
            r.slowlog_len()
            r.slowlog_reset()

        def bare() -> None:
            assert m.execute(t, "slowlog_reset").ok

        def audited() -> None:
            assert m.execute(t, "slowlog_reset", who="bench", audit=sink).ok

        rows: dict[str, list[float]] = {"floor": [], "bare": [], "audited": []}
        for _ in range(args.rounds):  # interleaved: load drift hits each alike
            for name, fn in (("floor", floor), ("bare", bare), ("audited", audited)):
                rows[name].append(per_second(fn, args.n))
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"slowlog_reset on a local Redis, {args.rounds} rounds x {args.n} (median/s)")
        print(f"  redis-py, 2 commands (floor)   {med['floor']:8.0f}/s")
        print(f"  execute, no audit log          {med['bare']:8.0f}/s   "
              f"{med['floor'] / med['bare']:.1f}x the floor's time")
        print(f"  execute, audited in SQLite     {med['audited']:8.0f}/s   "
              f"{med['floor'] / med['audited']:.1f}x the floor's time")
        m.stop_all()
        store.dispose()
    finally:
        srv.terminate()
        srv.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
