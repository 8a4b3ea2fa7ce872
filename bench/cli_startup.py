"""Bench: ``ksa`` start-up as whole processes, against the interpreter's own floors.

    .venv/bin/python bench/cli_startup.py [--runs 15] [--imports]

Interleaved runs (so the machine's drift hits all alike), medians of wall time:
``python -c pass`` (the interpreter), ``python -c 'import pydantic, yaml'`` (what any
command that reads a model needs), ``ksa --help``, ``ksa plugin list`` and ``ksa diagnose
redis 127.0.0.1:PORT`` against a redis-server of our own, all in a ``KSA_HOME`` of their
own whose store holds plugin state (one plugin disabled). ``--imports``: the modules
with the largest cumulative import time of each command (``python -X importtime``).
Goal (issue 15): ``ksa plugin list`` <= 150 ms.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _util import RedisServer, median  # noqa: E402

PY = sys.executable


def commands(port: int) -> dict[str, list[str]]:
    ksa = [PY, "-m", "kubestack_ai.ksa"]
    return {
        "python -c pass": [PY, "-c", "pass"],
        "python: import pydantic, yaml": [PY, "-c", "import pydantic, yaml"],
        "ksa --help": [*ksa, "--help"],
        "ksa plugin list": [*ksa, "plugin", "list"],
        "ksa diagnose redis": [*ksa, "diagnose", "redis", f"127.0.0.1:{port}"],
    }


def top_imports(cmd: list[str], n: int = 12) -> list[tuple[float, str]]:
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True,
                         text=True, cwd=str(ROOT)).stderr
    rows = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, cum, name = line.split(":", 1)[1].split("|")
        rows.append((int(cum) / 1000, name.rstrip()))
    return sorted(rows, reverse=True)[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--imports", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(tmp)
        # a store of our own holding plugin state, as on any machine where ksa ran:
        # `plugin list` then reads it (the no-store case is cheaper)
        os.environ["KSA_HOME"] = tmp
        os.environ.pop("KSA_DATABASE_URL", None)
        subprocess.run([PY, "-m", "kubestack_ai.ksa", "plugin", "disable", "kafka-diagnostics"],
                       stdout=subprocess.DEVNULL, cwd=str(ROOT), check=True)
        try:
            cmds = commands(server.port)
            times: dict[str, list[float]] = {k: [] for k in cmds}
            for _ in range(a.runs + 1):  # the first round warms the page cache
                for name, cmd in cmds.items():
                    t0 = time.perf_counter()
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   cwd=str(ROOT), check=False)
                    times[name].append(time.perf_counter() - t0)
            floor = median(times["python: import pydantic, yaml"][1:])
            print(f"whole processes, {a.runs} interleaved runs, medians:")
            for name, ts in times.items():
                m = median(ts[1:])
                print(f"  {name:32s} {m * 1000:7.1f} ms   {m / floor:5.2f}x pydantic+yaml")
            if a.imports:
                for name in ("ksa --help", "ksa plugin list", "ksa diagnose redis"):
                    print(f"\nlargest cumulative imports, {name}:")
                    for ms, mod in top_imports(cmds[name]):
                        print(f"  {ms:7.1f} ms {mod}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
