"""Cost of running a plugin in its plugin host (issue 21): per-diagnosis overhead with a
warm host against the same plugin in-process, host start-up, idle host memory.

    .venv/bin/python bench/isolation.py [--runs 200] [--starts 10]

The plugin is the builtin tcp-diagnostics (connect, one category) against a listening
socket of our own: the plugin's own work is small, so the difference is the isolation.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._util import median  # noqa: E402
from kubestack_ai.plugins import MiddlewareTarget, PluginConfig, PluginManager  # noqa: E402
from kubestack_ai.plugins.isolation import HostPool, PluginHost, locate, probe  # noqa: E402


def listener() -> int:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)

    def accept() -> None:
        while True:
            c, _ = srv.accept()
            c.close()

    threading.Thread(target=accept, daemon=True).start()
    return int(srv.getsockname()[1])


def memory(pid: int) -> tuple[float, float, float]:
    """(RSS of the host, RSS of its tree, PSS of its tree) in MiB: the tree is the
    zygote's fork that waits for the host (PID 1 of its namespace) and the host; RSS
    counts the pages they share with the zygote in full, PSS in share."""
    rss_tree = pss = host_rss = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kb = int(line.split()[1]) / 1024
                    rss_tree += kb
                    host_rss = kb if p != pid else host_rss
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(k) for k in kids]
    return host_rss, rss_tree, pss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--starts", type=int, default=10)
    args = ap.parse_args()
    port = listener()
    target = MiddlewareTarget(type="tcp", endpoints=(f"127.0.0.1:{port}",))
    layers = [layer.name for layer in probe() if layer.active]
    print(f"layers active here: {', '.join(layers)}")

    one = target.model_copy(update={"name": "one", "thresholds": {"latency_samples": 1}})
    manager = PluginManager()
    manager.load_builtin("tcp-diagnostics")
    pool = HostPool()
    ref = locate("tcp-diagnostics", True)
    cfg = PluginConfig(isolation="process")
    times: dict[tuple[str, str], list[float]] = {}
    for t in (target, one):
        pool.run("diagnose", ref, cfg, 0, t)  # start the host
        for where in ("in", "iso"):
            acc = times[(t.name, where)] = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                r = (manager.diagnose(t) if where == "in"
                     else pool.run("diagnose", ref, cfg, 0, t))
                acc.append(time.perf_counter() - t0)
            assert not r.errors, r.errors
    inproc, iso = times[(target.name, "in")], times[(target.name, "iso")]
    host = next(iter(pool.hosts.values()))
    assert host.proc is not None
    time.sleep(0.2)
    host_rss, tree_rss, tree_pss = memory(host.proc.pid)
    pool.close()

    from kubestack_ai.plugins.isolation.forks import zygote

    zygote().close()
    t0 = time.perf_counter()
    h = PluginHost(ref, cfg, 0)
    h.start()
    first = time.perf_counter() - t0
    h.kill()
    starts = []
    for _ in range(args.starts):
        h = PluginHost(ref, cfg, 0)
        t0 = time.perf_counter()
        h.start()
        starts.append(time.perf_counter() - t0)
        h.kill()

    mi, ms = median(inproc) * 1e3, median(iso) * 1e3
    print(f"diagnosis in-process      {mi:8.3f} ms (median of {args.runs})")
    print(f"diagnosis in a warm host  {ms:8.3f} ms")
    print(f"overhead per diagnosis    {ms - mi:8.3f} ms   goal <= 2 ms (7 connections "
          "brokered)")
    m1, s1 = median(times[("one", "in")]) * 1e3, median(times[("one", "iso")]) * 1e3
    print(f"  with 3 connections      {s1 - m1:8.3f} ms   ({m1:.3f} -> {s1:.3f} ms)")
    per = ((ms - mi) - (s1 - m1)) / 4
    print(f"  so per brokered connection {per:.3f} ms, fixed {(s1 - m1) - 3 * per:.3f} ms")
    print(f"host start (to ready)     {median(starts) * 1e3:8.1f} ms (median of {args.starts}) "
          "goal < 150 ms")
    print(f"first host of a process   {first * 1e3:8.1f} ms (starts the zygote too)")
    print(f"idle host RSS             {host_rss:8.1f} MB   goal < 30 MB "
          f"(with its waiting parent: RSS {tree_rss:.1f} MB, PSS {tree_pss:.1f} MB)")


if __name__ == "__main__":
    main()
