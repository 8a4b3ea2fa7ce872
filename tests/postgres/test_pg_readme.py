"""The plugin README's findings tables match the code: every finding code the plugin can
raise has a row, and no row names a code that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from kubestack_ai.plugins.postgres.plugin import PostgresPlugin

PKG = Path(__file__).resolve().parents[2] / "kubestack_ai" / "plugins" / "postgres"
README = (PKG / "README.md").read_text()
FRAMEWORK = {"unreachable", "auth_failed", "timeout", "failed", "too_many_clients"}


def readme_codes() -> set[str]:
    codes, category = set(), None
    for line in README.splitlines():
        head = re.match(r"\*\*(\w+)\*\*", line)
        if head:
            category = head.group(1)
        elif line.startswith("#"):
            category = None
        if category and line.startswith("| `"):
            for name in re.findall(r"`(\w+)`", line.split("|")[1]):
                codes.add(f"postgres.{category}.{name}")
    return codes


def source_codes() -> set[str]:
    text = "\n".join(p.read_text() for p in PKG.rglob("*.py"))
    codes = set(re.findall(r'"(postgres\.[a-z_]+\.[a-z0-9_]+)"', text))
    codes |= {f"postgres.maintenance.{k}_wraparound" for k in ("xid", "mxid")}
    lacking = set(re.findall(r'lacking\(run, "(\w+)"', text)) | {"connection"}
    codes |= {f"postgres.{c}.privilege_missing" for c in lacking}
    codes |= {f"postgres.connection.{c}" for c in FRAMEWORK}
    return codes


def test_every_code_has_a_row_and_every_row_a_code() -> None:
    assert readme_codes() == source_codes()


def test_every_category_has_a_table() -> None:
    assert {c.split(".")[1] for c in readme_codes()} == set(PostgresPlugin.categories())
