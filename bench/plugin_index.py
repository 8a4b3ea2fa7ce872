"""Bench: ``ksa plugin search`` on a 1,000-plugin signed index, and the install of a
50 KB plugin with every check (signatures, hashes, manifest, scan), as whole processes.

    .venv/bin/python bench/plugin_index.py [--runs 9] [--keep DIR]

Builds, in a temporary directory (or DIR), an index of 1,000 published plugins signed by a
throw-away key (each version packed, scanned and signed as ``ksa index add`` does; the
index is signed once at the end), a ``KSA_HOME`` that pins the key, and a 50 KB plugin
(``bench-big``). Then times, interleaved, medians of wall time:
``ksa plugin search`` (all rows), ``ksa plugin search redis`` and
``ksa plugin install bench-big --yes`` into an emptied plugins folder each run (the store
exists, as on a machine that ran a worker). Goals (issue 22): search < 300 ms, install < 1 s.
With ``--keep DIR`` the index and home stay, for timing by hand (the commands are printed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _util import median  # noqa: E402

from kubestack_ai.plugins.index import document, publish  # noqa: E402
from kubestack_ai.plugins.index.keys import generate, load_signing_key  # noqa: E402
from kubestack_ai.plugins.index.pack import pack  # noqa: E402
from kubestack_ai.plugins.index.scan import scan_folder  # noqa: E402

PY = sys.executable
MTYPES = ["redis", "kafka", "mysql", "postgresql", "http", "tcp", "elasticsearch", "mongodb"]


def write_plugin(folder: Path, pid: str, mtype: str, pad: int = 0) -> dict[str, object]:
    folder.mkdir(parents=True)
    manifest = {"id": pid, "name": f"Bench {pid}", "version": "1.0.0", "type": "middleware",
                "api_version": "1.0", "entry": "plugin:P",
                "description": f"Bench plugin {pid}: diagnoses {mtype} things", "requires": []}
    import yaml

    (folder / "plugin.yaml").write_text(yaml.safe_dump(manifest))
    body = ("from kubestack_ai.plugins import MiddlewarePlugin, PluginInfo, Run, category\n\n"
            "class P(MiddlewarePlugin):\n"
            f"    def info(self):\n        return PluginInfo(id={pid!r}, name={pid!r}, "
            "version='1.0.0')\n\n"
            f"    def middleware_type(self):\n        return {mtype!r}\n\n"
            "    def connect(self, deadline, target):\n        pass\n\n"
            "    @category('basic')\n    def check_basic(self, run: Run):\n"
            "        run.metric('x', 1)\n")
    (folder / "plugin.py").write_text(body)
    if pad:
        # readable Python text, as a real 50 KB plugin is (the scan parses all of it)
        lines = [f"T{i} = {{'code': 'bench.{i}', 'threshold': {i}, 'note': 'padding line'}}"
                 for i in range(pad // 70)]
        (folder / "tables.py").write_text("\n".join(lines) + "\n")
    return manifest


def build(base: Path, n: int) -> tuple[Path, Path]:
    index_dir, home = base / "index", base / "home"
    (home / "trusted_keys").mkdir(parents=True)
    keyfile, pub, _ = generate(base / "bench-key")
    shutil.copy(pub, home / "trusted_keys")
    key = load_signing_key(keyfile)
    doc = document.empty()
    (index_dir / "artifacts").mkdir(parents=True)
    src = base / "src"
    now = document.iso(dt.datetime.now(dt.UTC))
    for i in range(n + 1):
        pid = "bench-big" if i == n else f"bench-{i:04d}"
        mtype = MTYPES[i % len(MTYPES)]
        folder = src / pid
        manifest = write_plugin(folder, pid, mtype, pad=50_000 if i == n else 0)
        data, files = pack(folder)
        rel = f"artifacts/{pid}-1.0.0.tar.gz"
        (index_dir / rel).write_bytes(data)
        import hashlib

        e: dict[str, object] = {
            "artifact": rel, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
            "files": files, "manifest": manifest, "requires": [], "middleware_type": mtype,
            "categories": ["basic"], "scan": scan_folder(folder), "published": now,
            "key": key.keyid}
        e["signature"] = key.sign(document.version_payload(e))
        doc["plugins"][pid] = {"versions": {"1.0.0": e},
                               "ratings": {"score": 4.0, "count": 1, "reviews": []}}
    publish.save(index_dir, doc, key, 30)
    # a store, as on a machine where a worker ran
    from kubestack_ai.storage import Store

    Store(f"sqlite:///{home}/ksa.db").migrate()
    return index_dir, home


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--plugins", type=int, default=1000)
    ap.add_argument("--keep", metavar="DIR")
    a = ap.parse_args()
    base = Path(a.keep or tempfile.mkdtemp(prefix="ksa-index-bench-"))
    index_dir, home = build(base, a.plugins)
    size = (index_dir / "index.json").stat().st_size
    big = (index_dir / "artifacts" / "bench-big-1.0.0.tar.gz").stat().st_size
    print(f"index: {a.plugins + 1} plugins, index.json {size / 1024:.0f} KiB; bench-big "
          f"unpacked {sum(p.stat().st_size for p in (base / 'src' / 'bench-big').iterdir())} "
          f"bytes, artifact {big} bytes")
    env = {**os.environ, "KSA_HOME": str(home)}
    ksa = [PY, "-m", "kubestack_ai.ksa", "plugin"]
    cmds = {"search (all)": [*ksa, "search", "--index", str(index_dir)],
            "search redis": [*ksa, "search", "redis", "--index", str(index_dir)],
            "install 50 KB": [*ksa, "install", "bench-big", "--yes", "--index", str(index_dir)]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(a.runs):
        for name, cmd in cmds.items():
            if name.startswith("install"):
                shutil.rmtree(home / "plugins", ignore_errors=True)
            t0 = time.perf_counter()
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(ROOT))
            times[name].append(time.perf_counter() - t0)
            if p.returncode:
                print(p.stdout, p.stderr)
                return 1
    print(f"{'command':<16} median ms   min ms   max ms   ({a.runs} runs each, interleaved)")
    for name, ts in times.items():
        print(f"{name:<16} {median(ts) * 1000:9.0f} {min(ts) * 1000:8.0f} {max(ts) * 1000:8.0f}")
    if a.keep:
        print(f"KSA_HOME={home} {' '.join(cmds['search (all)'])}")
    else:
        shutil.rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
