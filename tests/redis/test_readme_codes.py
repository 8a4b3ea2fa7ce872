"""The plugin README's findings reference matches the code: every finding code the
plugin (or the framework, for a target it cannot diagnose) can raise has a row, no row
names a code that does not exist, and the thresholds table lists every default with
its value (issue 12: "every finding code with its category, severity rule and the
source of its threshold")."""

from __future__ import annotations

import re
from pathlib import Path

from kubestack_ai.plugins.redis.constants import DEFAULTS, MB

PKG = Path(__file__).resolve().parents[2] / "kubestack_ai" / "plugins" / "redis"
README = (PKG / "README.md").read_text()
FRAMEWORK = {"unreachable", "auth_failed", "timeout", "failed"}


def readme_codes() -> set[str]:
    codes: set[str] = set()
    category = None
    for line in README.splitlines():
        head = re.match(r"\*\*(\w+)\*\*", line)
        if head:
            category = head.group(1)
        elif line.startswith("## ") or line.startswith("### "):
            category = None
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for name in re.findall(r"`([\w.]+)`", first):
            if name.startswith("redis."):
                codes.add(name)
            elif category is not None:
                codes.add(f"redis.{category}.{name}")
    return codes


def source_codes() -> set[str]:
    text = "\n".join(p.read_text() for p in PKG.rglob("*.py"))
    codes = set(re.findall(r'"(redis\.[a-z_]+\.[a-z_]+)"', text))
    kinds = set(re.findall(r'kind="([a-z_]+)"', text))
    return codes | {f"redis.connection.{k}" for k in kinds | FRAMEWORK}


def test_every_code_has_a_row_and_every_row_a_code() -> None:
    readme, source = readme_codes(), source_codes()
    assert source - readme == set(), "codes without a README row"
    assert readme - source == set(), "README rows naming no code"


def test_thresholds_table_lists_every_default_with_its_value() -> None:
    section = README[README.index("## Thresholds"):README.index("## Actions")]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \| [^|]+ \|$", section, re.M))
    assert set(rows) == set(DEFAULTS)
    for name, text in rows.items():
        value = eval(text.strip(), {"MB": MB})  # "10 * MB", "1000000", "0.05"
        assert value == DEFAULTS[name], name
