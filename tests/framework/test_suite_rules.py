"""Rules the suite keeps about itself.

A missing server is a failure in CI, never a silent skip: only the shared ``require()``
in tests/conftest.py may skip, and it fails instead when CI is set."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _skips(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("skip", "importorskip") \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "pytest":
            lines.append(node.lineno)
        if isinstance(node, ast.Attribute) and node.attr == "skipif":
            lines.append(node.lineno)
    return lines


def test_only_the_shared_require_helper_skips() -> None:
    found = {str(p.relative_to(TESTS)): _skips(p) for p in TESTS.rglob("*.py")
             if p != TESTS / "conftest.py"}
    assert {k: v for k, v in found.items() if v} == {}
