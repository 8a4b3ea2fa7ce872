"""Framework benchmark (issue 2): plugin load, lifecycle, sandbox overhead, memory per
instance, registry lookup scaling, and `ksa plugin list` as a whole process.

    .venv/bin/python bench/framework.py

Prints medians of repeated runs. Goals (10x the seed's): load < 10 ms, lifecycle op < 5 ms,
sandbox overhead < 1 ms/call, < 0.5 MB per plugin instance, lookups flat 10 -> 10,000.
"""

from __future__ import annotations

import gc
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubestack_ai.plugins import Deadline, PluginManager, Registry, Sandbox, builtin_ids, load_builtin  # noqa: E402
from tests.framework.fakes import FakePlugin  # noqa: E402


def median_of(fn, repeat: int = 200) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_load() -> dict[str, float]:
    builtin_ids()  # imports the builtin packages (their drivers stay unimported)
    out = {}
    for pid in builtin_ids():
        def load() -> None:
            m = PluginManager()
            m.load_builtin(pid)
        out[pid] = median_of(load, 100) * 1e3
    return out


def bench_lifecycle() -> dict[str, float]:
    res: dict[str, list[float]] = {"init": [], "start": [], "stop": []}
    for _ in range(200):
        m = PluginManager()
        m.register(FakePlugin())
        for op in ("init", "start", "stop"):
            t0 = time.perf_counter()
            getattr(m, op)("fake")
            res[op].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in res.items()}


def bench_sandbox() -> dict[str, float]:
    d = Deadline(5)

    def noop(_: Deadline) -> None:
        return None

    direct = median_of(lambda: noop(d), 2000)
    threaded = Sandbox()
    inline = Sandbox(threaded=False)
    t = median_of(lambda: threaded.run("p", "op", noop, 5.0), 2000)
    i = median_of(lambda: inline.run("p", "op", noop, 5.0), 2000)
    return {"direct_us": direct * 1e6, "threaded_us": t * 1e6, "inline_us": i * 1e6,
            "overhead_threaded_ms": (t - direct) * 1e3, "overhead_inline_ms": (i - direct) * 1e3}


def bench_memory() -> dict[str, float]:
    out = {}
    for pid in builtin_ids():
        load_builtin(pid)  # warm imports so only the instances are counted
        gc.collect()
        tracemalloc.start()
        m = PluginManager()
        snap0 = tracemalloc.take_snapshot()
        for _ in range(50):
            # a registry takes one instance per id: count 50 managers' worth
            mm = PluginManager()
            mm.load_builtin(pid)
            mm.init(pid)
            mm.start(pid)
            m.__dict__.setdefault("keep", []).append(mm)
        snap1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        total = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
        out[pid] = total / 50 / 1024 / 1024
    return out


def bench_registry() -> dict[int, float]:
    out = {}
    for n in (10, 100, 1000, 10000):
        reg = Registry()
        for i in range(n):
            reg.register(FakePlugin(f"p{i}", f"t{i}"))
        ids = [f"p{i}" for i in range(0, n, max(1, n // 10))]
        types = [f"t{i}" for i in range(0, n, max(1, n // 10))]

        def lookups() -> None:
            for pid, t in zip(ids, types, strict=True):
                reg.get(pid)
                reg.get_middleware_plugin(t)
                reg.get_state(pid)

        out[n] = median_of(lookups, 2000) / (3 * len(ids)) * 1e9
    return out


def bench_cli() -> float:
    exe = Path(sys.executable).with_name("ksa")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "kubestack_ai.ksa"]
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        subprocess.run([*cmd, "plugin", "list"], check=True, capture_output=True,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "0"})
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:]) * 1e3


def main() -> None:
    print("builtin plugin load (ms, median):")
    for pid, ms in bench_load().items():
        print(f"  {pid:22s} {ms:8.3f}   goal < 10")
    print("lifecycle operation (ms, median):")
    for op, ms in bench_lifecycle().items():
        print(f"  {op:22s} {ms:8.3f}   goal < 5")
    sb = bench_sandbox()
    print("sandbox (median):")
    print(f"  direct call            {sb['direct_us']:8.2f} us")
    print(f"  sandboxed, thread      {sb['threaded_us']:8.2f} us  "
          f"overhead {sb['overhead_threaded_ms']:.3f} ms  goal < 1")
    print(f"  sandboxed, inline      {sb['inline_us']:8.2f} us  overhead {sb['overhead_inline_ms']:.3f} ms")
    print("memory per running plugin instance (MB):")
    for pid, mb in bench_memory().items():
        print(f"  {pid:22s} {mb:8.4f}   goal < 0.5")
    print("registry lookup (ns per lookup, median):")
    for n, ns in bench_registry().items():
        print(f"  {n:6d} plugins        {ns:8.1f}")
    print(f"`ksa plugin list` whole process: {bench_cli():.1f} ms median   goal < 300")


if __name__ == "__main__":
    main()
