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


def rss_of_tree(pid: int) -> float:
    """VmRSS of ``pid`` and its descendants (unshare(1) and the host inside), MiB."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(k) for k in kids]
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--starts", type=int, default=10)
    args = ap.parse_args()
    port = listener()
    target = MiddlewareTarget(type="tcp", endpoints=(f"127.0.0.1:{port}",))
    layers = [layer.name for layer in probe() if layer.active]
    print(f"layers active here: {', '.join(layers)}")

    manager = PluginManager()
    manager.load_builtin("tcp-diagnostics")
    inproc = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        r = manager.diagnose(target)
        inproc.append(time.perf_counter() - t0)
    assert not r.errors, r.errors

    pool = HostPool()
    ref = locate("tcp-diagnostics", True)
    cfg = PluginConfig(isolation="process")
    pool.run("diagnose", ref, cfg, 0, target)  # start the host
    iso = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        r = pool.run("diagnose", ref, cfg, 0, target)
        iso.append(time.perf_counter() - t0)
    assert not r.errors, r.errors
    host = next(iter(pool.hosts.values()))
    assert host.proc is not None
    time.sleep(0.2)
    idle = rss_of_tree(host.proc.pid)
    pool.close()

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
    print(f"overhead per diagnosis    {ms - mi:8.3f} ms   goal <= 2 ms")
    print(f"host start (to ready)     {median(starts) * 1e3:8.1f} ms (median of {args.starts}) "
          "goal < 150 ms")
    print(f"idle host RSS             {idle:8.1f} MB   goal < 30 MB")


if __name__ == "__main__":
    main()
