"""Printing for people (tables, findings) and for scripts (JSON)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic and the models: imported by the commands that use them
    from kubestack_ai.plugins import DiagnosticResult


class CliError(Exception):
    """One clear line for the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 3) -> None:
        super().__init__(message)
        self.code = code


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[printable(str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


_MARK = {"critical": "CRIT", "warning": "WARN", "info": "INFO"}


def render_result(r: DiagnosticResult) -> str:
    out = [f"{r.target_name}: {r.status.name}  "
           f"({r.plugin_id} {r.plugin_version}, {r.duration * 1000:.1f} ms"
           f"{', ' + r.outcome if r.outcome != 'completed' else ''})"]
    order = sorted(r.findings, key=lambda f: (-f.severity, f.category, f.code))
    for f in order:
        out.append(f"  [{_MARK[str(f.severity)]}] {f.code}: {f.title}")
        if f.evidence:
            ev = ", ".join(f"{k}={one_line(v, 160)}" for k, v in f.evidence.items())
            out.append(f"         evidence: {one_line(ev, 400)}")
        if f.suggestion:
            out.append(f"         do: {f.suggestion}")
    shown = {str(f.evidence.get("error")) for f in r.findings}
    for where, err in r.errors.items():
        if err not in shown:  # an unreachable server: its finding already says why
            out.append(f"  [ERR ] {where}: {one_line(err, 400)}")
    if not r.findings and not r.errors:
        out.append("  no findings")
    return "\n".join(printable(line) for line in out)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls (a terminal's escape sequences, bells, line breaks) and the
bidirectional overrides that reorder what a reader sees."""


def printable(text: str) -> str:
    """``text`` safe for a terminal: every control character written as its escape
    (``\\x1b``, ``\\u202e``). Names and values come from the monitored servers (a Redis
    key, a query's text), so whoever writes the data must not write to our terminal."""
    return _CONTROL.sub(lambda m: (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                   else f"\\u{ord(m[0]):04x}"), text)


def one_line(value: Any, limit: int) -> str:
    """``value`` on one line (whitespace runs become one space), cut to ``limit``
    characters with ``...``: terminal output; ``--json`` has the full value."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
