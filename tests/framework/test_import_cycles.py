"""No import cycle anywhere in kubestack_ai, function-level (lazy) imports included:
a lazy import that closes a cycle is still a cycle, only hidden from the interpreter.
Also the layers: plugins <- storage <- workers <- scheduler <- ksa, never upwards."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "kubestack_ai"
PACKAGE = "kubestack_ai"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node.level, node.module)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in mods else base)
            for t in targets:
                # `import a.b.c` runs a, a.b and a.b.c: the deepest known one is the edge
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != mod and t != PACKAGE:
                    edges[mod].add(t)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_in_kubestack_ai() -> None:
    cycles = _cycles(_edges(_modules()))
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


LAYERS = ["plugins", "storage", "workers", "scheduler", "ksa"]


def test_imports_flow_one_way_between_layers() -> None:
    wrong = []
    for mod, targets in _edges(_modules()).items():
        layer = mod.split(".")[1] if mod.count(".") else None
        if layer not in LAYERS:
            continue
        for t in targets:
            other = t.split(".")[1] if t.count(".") else None
            if other in LAYERS and LAYERS.index(other) > LAYERS.index(layer):
                wrong.append(f"{mod} -> {t}")
    assert wrong == []


def test_web_and_notify_sit_on_storage_only() -> None:
    """DESIGN.md: web and notify read storage (and plugins); neither imports the workers,
    the scheduler or the CLI (the web view's plugins page reads manifests, not workers)."""
    wrong = [f"{mod} -> {t}" for mod, targets in _edges(_modules()).items()
             if mod.split(".")[1:2] in (["web"], ["notify"])
             for t in targets if t.split(".")[1:2] in (["workers"], ["scheduler"], ["ksa"])]
    assert wrong == []
