"""Helpers shared by the category checks: reading what prepare() fetched, reporting
what could not be read, and trends over earlier runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...base import Run
from ...errors import PluginError
from ...models import Severity, utcnow
from ..client import QueryFailure
from ..constants import DEFAULTS
from ..server import Server

Rows = list[dict[str, Any]]


class NotPrepared(PluginError):
    """prepare() could not read the server: its error is under ``_prepare``."""


def server(run: Run) -> Server:
    s = run.data.get("server")
    if s is None:
        raise NotPrepared("nothing was read from the server (see _prepare)")
    return s  # type: ignore[no-any-return]


def status(run: Run, name: str, default: float | None = None) -> float | None:
    v = run.data["status"].get(name)
    if v is None or v == "":
        return default
    try:
        return float(v)
    except (TypeError, ValueError):
        return default


def status_int(run: Run, name: str) -> int | None:
    v = status(run, name)
    return int(v) if v is not None else None


def var(run: Run, name: str, default: str | None = None) -> str | None:
    v = run.data["vars"].get(name)
    return default if v is None else str(v)


def var_num(run: Run, name: str) -> float | None:
    """A numeric variable; an integer setting stays an int (evidence shows 16777216)."""
    v = var(run, name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return None


def on(run: Run, name: str) -> bool:
    return (var(run, name) or "").upper() in ("ON", "1", "YES", "TRUE")


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def th(run: Run, name: str) -> float:
    """A threshold: the target's, else the plugin config's, else constants.DEFAULTS."""
    return run.threshold(name, DEFAULTS[name])


def add_error(run: Run, category: str, text: str) -> None:
    prev = run.errors.get(category)
    text = text.rstrip("; ")  # a GRANT statement ends in ";": no ";;" when joined
    run.errors[category] = f"{prev}; {text}" if prev else text


def rows(run: Run, key: str, category: str, what: str, grant: str | None = None) -> Rows | None:
    """The rows prepare() fetched under ``key``; None when not fetched or refused.

    A refused privilege becomes a warning finding naming the exact GRANT and an entry in
    ``run.errors`` for the category; the diagnosis goes on without that part.
    """
    got = run.data["q"].get(key)
    if got is None:
        return None
    if isinstance(got, QueryFailure):
        if got.kind == "privilege" and grant:
            cannot_read(run, category, what, str(got), grant)
        elif got.kind != "missing":
            add_error(run, category, f"could not read {what}: {got}")
        return None
    out: Rows = got
    return out


def failure(run: Run, key: str) -> QueryFailure | None:
    got = run.data["q"].get(key)
    return got if isinstance(got, QueryFailure) else None


def cannot_read(run: Run, category: str, what: str, error: str, grant: str) -> None:
    seen: set[tuple[str, str]] = run.data.setdefault("_cannot_read", set())
    if (category, grant) in seen:  # one finding per missing grant and category
        add_error(run, category, f"could not read {what}: {error}")
        return
    seen.add((category, grant))
    run.finding(f"mysql.{category}.privilege_missing", Severity.WARNING,
                f"Cannot read {what}: the monitoring user lacks a privilege",
                evidence={"what": what, "error": error, "grant": grant,
                          "user": server(run).user},
                suggestion=f"Run as an administrator: {grant}")
    add_error(run, category, f"could not read {what}: {error}; needs: {grant}")


def series(run: Run, name: str, current: float | None) -> list[tuple[dt.datetime, float]]:
    """Earlier runs' values of a metric, oldest first, then the current one."""
    out: list[tuple[dt.datetime, float]] = []
    for snap in run.history:
        v = snap.metrics.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((snap.at, float(v)))
    if current is not None:
        out.append((utcnow(), float(current)))
    return out


def growing(points: list[tuple[dt.datetime, float]], runs: int = 3) -> bool:
    """True when the last ``runs`` values each rose over the one before."""
    if len(points) < runs:
        return False
    tail = [v for _, v in points[-runs:]]
    return all(b > a for a, b in zip(tail, tail[1:], strict=False))


def rate(points: list[tuple[dt.datetime, float]], per_seconds: float) -> float | None:
    """Increase of a counter from the previous run to now, per ``per_seconds``; None
    without history or after a counter reset (server restart)."""
    if len(points) < 2:
        return None
    (t0, v0), (t1, v1) = points[-2], points[-1]
    secs = (t1 - t0).total_seconds()
    if secs <= 0 or v1 < v0:
        return None
    return (v1 - v0) * per_seconds / secs


def short(text: Any, limit: int = 300) -> str:
    s = "" if text is None else str(text)
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 3] + "..."
