"""Retention: the run history and the audit log pruned by age and by count per target;
what the pruned runs said is kept as one summary row per target, plugin and UTC day.

A 10,000-target fleet at a 60 s interval writes 14 million runs a day: without this the
history grows forever. ``prune`` deletes in batches of ``batch`` rows, each batch in one
transaction that deletes the runs and adds them to their day's rollup together, so a
rollup counts every pruned run exactly once (a batch another pruner deleted first is
rolled back, not counted twice). Rollups are additive: a day pruned in several pieces
(by count today, by age next week) sums up to the whole day.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, insert, or_, select, update

from kubestack_ai.plugins.models import Status, utcnow

from ._base import Part, short_key
from .models import AuditRow, RollupRow, RunRow
from .records import RollupRecord


@dataclass(frozen=True, slots=True)
class PruneReport:
    runs: int = 0
    """Runs deleted from the history (each added to its day's rollup)."""
    audit: int = 0
    """Audit log records deleted."""


class _Raced(Exception):
    """Another pruner deleted part of this batch first: roll the batch back."""


class Retention(Part):
    """Pruning of the history and the audit log; the daily rollups (``ksa_rollup_daily``)."""

    def prune(self, *, older_than: dt.timedelta | None = None, per_target: int | None = None,
              batch: int = 2000) -> PruneReport:
        """Delete runs that started more than ``older_than`` ago, and each target's runs
        beyond its newest ``per_target``, rolling them up by day first; the same limits
        for the audit log (by ``at`` and per ``target``; no rollup). None: no limit."""
        runs = audit = 0
        if older_than is not None:
            cutoff = utcnow() - older_than
            runs += self._prune(RunRow, RunRow.started_at < cutoff, batch, rollup=True)
            audit += self._prune(AuditRow, AuditRow.at < cutoff, batch, rollup=False)
        if per_target is not None:
            for cond in self._beyond(RunRow, RunRow.target_key, RunRow.started_at, per_target):
                runs += self._prune(RunRow, cond, batch, rollup=True)
            for cond in self._beyond(AuditRow, AuditRow.target, AuditRow.at, per_target):
                audit += self._prune(AuditRow, cond, batch, rollup=False)
        return PruneReport(runs=runs, audit=audit)

    def purge_history(self, older_than: dt.timedelta) -> int:
        """Delete runs that started more than ``older_than`` ago (rolled up); how many."""
        return self.prune(older_than=older_than).runs

    def rollups(self, target_key: str, plugin_id: str | None = None,
                since: dt.date | None = None) -> list[RollupRecord]:
        """A target's daily rollups, oldest first."""
        q = select(RollupRow).where(RollupRow.target_key == short_key(target_key))
        if plugin_id is not None:
            q = q.where(RollupRow.plugin_id == plugin_id)
        if since is not None:
            q = q.where(RollupRow.day >= since)
        q = q.order_by(RollupRow.day, RollupRow.plugin_id)
        rows = self._tx(lambda s: list(s.scalars(q)), what="rollups")
        return [RollupRecord(target_key=r.target_key, plugin_id=r.plugin_id, day=r.day,
                             runs=r.runs, worst_status=r.worst_status,
                             statuses=json.loads(r.statuses), findings=json.loads(r.findings),
                             first_at=r.first_at, last_at=r.last_at) for r in rows]

    # -- the work -----------------------------------------------------------------------

    def _beyond(self, table: Any, key: Any, at: Any, keep: int) -> Iterable[ColumnElement[bool]]:
        """For each key with more than ``keep`` rows: the condition selecting its older ones."""
        over = select(key).group_by(key).having(func.count() > keep)
        for (k,) in self._core(lambda c: c.execute(over).all(), what="prune"):
            nth = (select(at, table.id).where(key == k).order_by(at.desc(), table.id.desc())
                   .offset(keep).limit(1))
            row = self._core(_first(nth), what="prune")
            if row is not None:
                yield and_(key == k, or_(at < row[0], and_(at == row[0], table.id <= row[1])))

    def _prune(self, table: Any, cond: ColumnElement[bool], batch: int, *, rollup: bool) -> int:
        cols = ((RunRow.id, RunRow.target_key, RunRow.plugin_id, RunRow.status,
                 RunRow.started_at, RunRow.result) if rollup else (table.id,))
        # oldest first along the time index (by id, the database would sort every
        # matching row for each batch: quadratic over a big prune)
        at = RunRow.started_at if table is RunRow else AuditRow.at
        pick = select(*cols).where(cond).order_by(at, table.id).limit(batch)

        def one(c: Connection) -> int:
            rows = c.execute(pick).all()
            if not rows:
                return 0
            ids = [r[0] for r in rows]
            if c.execute(delete(table).where(table.id.in_(ids))).rowcount != len(ids):
                raise _Raced
            if rollup:
                _merge(c, rows)
            return len(ids)

        total = 0
        while True:
            try:
                n = self._core(one, write=True, passthrough=(_Raced,), what="prune")
            except _Raced:
                continue
            total += n
            if n < batch:
                return total


def _merge(c: Connection, rows: Iterable[Any]) -> None:
    """Add pruned runs to their days' rollups (created when missing)."""
    days: dict[tuple[str, str, dt.date], dict[str, Any]] = {}
    for _, tk, pid, status, started, body in rows:
        started = started if started.tzinfo else started.replace(tzinfo=dt.UTC)
        d = days.setdefault((tk, pid, started.date()), _empty(started))
        _add(d, status, started, _codes(body))
    existing = select(RollupRow).where(RollupRow.target_key.in_({k[0] for k in days}),
                                       RollupRow.day.in_({k[2] for k in days}))
    for row in c.execute(existing).all():
        r = row._mapping
        if (r["target_key"], r["plugin_id"], r["day"]) not in days:
            continue
        d = days[(r["target_key"], r["plugin_id"], r["day"])]
        d["runs"] += r["runs"]
        d["worst"] = max(d["worst"], Status[r["worst_status"].upper()])
        for k, v in json.loads(r["statuses"]).items():
            d["statuses"][k] = d["statuses"].get(k, 0) + v
        for k, v in json.loads(r["findings"]).items():
            d["findings"][k] = d["findings"].get(k, 0) + v
        d["first"] = min(d["first"], _aware(r["first_at"]))
        d["last"] = max(d["last"], _aware(r["last_at"]))
        d["id"] = r["id"]
    for (tk, pid, day), d in days.items():
        values = dict(runs=d["runs"], worst_status=str(d["worst"]),
                      statuses=json.dumps(d["statuses"], sort_keys=True),
                      findings=json.dumps(d["findings"], sort_keys=True),
                      first_at=d["first"], last_at=d["last"])
        if "id" in d:
            c.execute(update(RollupRow).where(RollupRow.id == d["id"]).values(**values))
        else:
            c.execute(insert(RollupRow).values(target_key=tk, plugin_id=pid, day=day, **values))


def _first(q: Any) -> Any:
    return lambda c: c.execute(q).first()


def _empty(at: dt.datetime) -> dict[str, Any]:
    return {"runs": 0, "worst": Status.HEALTHY, "statuses": {}, "findings": {}, "first": at,
            "last": at}


def _add(d: dict[str, Any], status: str, at: dt.datetime, codes: set[str]) -> None:
    d["runs"] += 1
    d["worst"] = max(d["worst"], Status[status.upper()])
    d["statuses"][status] = d["statuses"].get(status, 0) + 1
    for code in codes:
        d["findings"][code] = d["findings"].get(code, 0) + 1
    d["first"], d["last"] = min(d["first"], at), max(d["last"], at)


def _codes(body: str) -> set[str]:
    """The finding codes of a stored result (each counted once per run)."""
    try:
        return {f["code"] for f in json.loads(body).get("findings", ()) if "code" in f}
    except (ValueError, TypeError, AttributeError):
        return set()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
