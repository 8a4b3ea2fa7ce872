"""Trends: what the web view charts, read from the run history.

- ``metric_points``: one target's key metrics over its recent completed runs (the
  values named, and each run's warning and critical finding codes, for the marks on the
  time axis);
- ``status_strips``: the worst status of each of a page's targets in each of the last
  24 hours, in one query (a CASE per hour over the runs through the (target, started)
  index), for the front page's strip.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select

from kubestack_ai.plugins.models import Status, utcnow

from ._base import Part, short_key
from .models import RunRow

_RANK = case(*((RunRow.status == str(s), int(s)) for s in Status), else_=-1)
_NAME = {int(s): str(s) for s in Status}


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One completed run, as a chart needs it."""

    at: dt.datetime
    values: dict[str, Any]
    """The key metrics this run reported (absent: not reported)."""
    findings: tuple[tuple[str, str], ...]
    """(severity, code) of its warning and critical findings."""


class Trends(Part):
    """Charts and strips, read from the run history."""

    def metric_points(self, target_key: str, names: Sequence[str], since: dt.datetime,
                      limit: int = 1500) -> list[MetricPoint]:
        """The named metrics of a target's completed runs since ``since`` (at most the
        newest ``limit``), oldest first."""
        q = (select(RunRow.started_at, RunRow.result)
             .where(RunRow.target_key == short_key(target_key), RunRow.started_at >= since,
                    RunRow.outcome == "completed")
             .order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(limit))
        rows = self._core(lambda c: c.execute(q).all(), what="metric_points")
        out = []
        for at, body in reversed(rows):
            data = json.loads(body)
            metrics = data.get("metrics") or {}
            out.append(MetricPoint(at, {n: metrics[n] for n in names if n in metrics}, tuple(
                (f["severity"], f["code"]) for f in data.get("findings", ())
                if f.get("severity") in ("warning", "critical"))))
        return out

    def status_strips(self, keys: Iterable[str], hours: int = 24,
                      now: dt.datetime | None = None) -> dict[str, list[str | None]]:
        """Per target: the worst status of its runs in each of the last ``hours`` hours,
        oldest first (None: no run in that hour)."""
        keys = [short_key(k) for k in keys]
        if not keys:
            return {}
        now = now or utcnow()
        start = now - dt.timedelta(hours=hours)
        cols = [func.max(case((RunRow.started_at.between(
            start + dt.timedelta(hours=i), start + dt.timedelta(hours=i + 1)), _RANK),
            else_=-1)).label(f"h{i}") for i in range(hours)]
        q = (select(RunRow.target_key, *cols)
             .where(RunRow.target_key.in_(keys), RunRow.started_at >= start)
             .group_by(RunRow.target_key))

        def fn(c: Connection) -> dict[str, list[str | None]]:
            out: dict[str, list[str | None]] = {k: [None] * hours for k in keys}
            for key, *ranks in c.execute(q):
                out[key] = [_NAME.get(int(r)) if r is not None else None for r in ranks]
            return out
        return self._core(fn, what="status_strips")
