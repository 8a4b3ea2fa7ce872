"""External plugins: discovery, load and hot reload, timed (medians), with their floors.

    .venv/bin/python bench/external_plugins.py [--runs N]

- discovery of 200 plugin folders (copies of examples/plugins/http-diagnostics with their
  own ids): discover_plugins() vs the floor, reading the same files with libyaml's
  CSafeLoader (no alias guard, no validation);
- load of one external plugin (manifest, fresh import, instance, info() in the sandbox,
  register) vs the floor, importing the module with importlib and instantiating it;
- hot reload of that plugin (fresh import, init, start, swap) vs the same floor; the
  plugin's own init is reported apart (the goal is < 50 ms plus init).
Goals: < 5 ms per manifest discovered, < 20 ms per plugin loaded, reload < 50 ms + init.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubestack_ai.plugins import PluginManager, discover_plugins

EXAMPLE = REPO / "examples" / "plugins" / "http-diagnostics"
N_PLUGINS = 200
FLOOR_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def make_tree(base: Path) -> Path:
    tree = base / "plugins"
    manifest = (EXAMPLE / "plugin.yaml").read_text()
    for i in range(N_PLUGINS):
        d = tree / f"p{i:03d}"
        d.mkdir(parents=True)
        (d / "plugin.yaml").write_text(manifest.replace("id: http-diagnostics",
                                                        f"id: http-diagnostics-{i:03d}"))
        (d / "plugin.py").write_text("")
    return tree


def bench_discovery(tree: Path, runs: int) -> tuple[float, float]:
    ours, floor = [], []
    files = sorted(tree.glob("*/plugin.yaml"))
    for _ in range(runs):
        t0 = time.perf_counter()
        report = discover_plugins(tree)
        ours.append(time.perf_counter() - t0)
        assert len(report.found) == N_PLUGINS and not report.invalid, report.invalid[:1]
        t0 = time.perf_counter()
        for f in sorted(tree.glob("*/plugin.yaml")):
            yaml.load(f.read_text(), Loader=FLOOR_LOADER)
        floor.append(time.perf_counter() - t0)
    assert len(files) == N_PLUGINS
    return median_ms(ours), median_ms(floor)


def floor_import(n: int) -> float:
    """Import the example's package fresh with importlib and build the plugin."""
    name = f"bench_floor_{n}"
    spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    assert spec is not None
    pkg = importlib.util.module_from_spec(spec)
    pkg.__path__ = [str(EXAMPLE)]
    t0 = time.perf_counter()
    sys.modules[name] = pkg
    mod = importlib.import_module(f"{name}.plugin")
    mod.HttpPlugin().info()
    elapsed = time.perf_counter() - t0
    for k in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[k]
    return elapsed


def bench_load(runs: int) -> tuple[float, float]:
    ours, floor = [], []
    for i in range(runs):
        m = PluginManager()
        t0 = time.perf_counter()
        m.load_path(EXAMPLE)
        ours.append(time.perf_counter() - t0)
        floor.append(floor_import(i))
    return median_ms(ours), median_ms(floor)


def bench_reload(runs: int) -> dict[str, float]:
    m = PluginManager()
    m.load_path(EXAMPLE)
    m.ensure_running("http-diagnostics")
    total, init, floor = [], [], []
    for i in range(runs):
        t0 = time.perf_counter()
        report = m.hot_reload("http-diagnostics")
        total.append(time.perf_counter() - t0)
        init.append(report.seconds["init"])
        report.wait_retired(5)
        floor.append(floor_import(10_000 + i))
    return {"total": median_ms(total), "init": median_ms(init),
            "without_init": statistics.median(t - i for t, i in zip(total, init, strict=True)) * 1000,
            "floor": median_ms(floor)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ksa-bench-"))
    try:
        tree = make_tree(tmp)
        ours, floor = bench_discovery(tree, args.runs)
        print(f"discovery of {N_PLUGINS} plugin folders ({args.runs} runs):")
        print(f"  discover_plugins   median {ours:8.2f} ms  = {ours / N_PLUGINS:.3f} ms/manifest"
              f"  (goal < 5)")
        print(f"  floor (read+Cyaml) median {floor:8.2f} ms  = {floor / N_PLUGINS:.3f} "
              f"ms/manifest  ratio {ours / floor:.2f}x")
        ours, floor = bench_load(args.runs * 2)
        print(f"load of one external plugin ({args.runs * 2} runs):")
        print(f"  load_path          median {ours:8.2f} ms  (goal < 20)")
        print(f"  floor (importlib)  median {floor:8.2f} ms  ratio {ours / floor:.2f}x")
        r = bench_reload(args.runs * 2)
        print(f"hot reload ({args.runs * 2} runs):")
        print(f"  hot_reload         median {r['total']:8.2f} ms  (plugin init "
              f"{r['init']:.2f} ms; without init {r['without_init']:.2f} ms, goal < 50)")
        print(f"  floor (importlib)  median {r['floor']:8.2f} ms  ratio "
              f"{r['without_init'] / r['floor']:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
