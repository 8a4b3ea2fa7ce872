"""Findings as plain values, so that the rules are pure functions a test can call on
hand-built metadata; the category methods emit them into the run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..base import Run
from ..models import Severity
from .constants import DEFAULTS
from .model import TP

NAMED_LIMIT = 50
"""Evidence names at most this many items (and gives the full count)."""


@dataclass(frozen=True)
class F:
    code: str
    severity: Severity
    title: str
    evidence: dict[str, Any]
    suggestion: str


def th(run: Run, name: str) -> float:
    """A threshold: the target's, else the plugin config's, else constants.DEFAULTS."""
    return run.threshold(name, DEFAULTS[name])


def emit(run: Run, findings: Iterable[F]) -> None:
    for f in findings:
        run.finding(f.code, f.severity, f.title, evidence=f.evidence, suggestion=f.suggestion)


def tp_name(tp: TP) -> str:
    return f"{tp[0]}:{tp[1]}"


def named(items: Iterable[Any], limit: int = NAMED_LIMIT) -> list[Any]:
    out = []
    for i, x in enumerate(items):
        if i >= limit:
            break
        out.append(x)
    return out
