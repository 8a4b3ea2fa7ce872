"""The fleet's read side: the latest run of every target and the queries the web view,
``/metrics`` and the notifier make.

``record_run`` keeps one row per target in ``ksa_target_latest`` (same transaction as
the history row), so that a page of the fleet reads at most one row per target through
an index, whatever the length of the history. Which rows are the fleet's, and when a
target is stale (its last run older than twice its interval from the fleet file), is
``members.py``'s. Before a fleet is declared, the interval is guessed: the gap between a
target's last two runs as observed, at least ``MIN_GAP`` seconds (``stale_ts``), unknown
until a target has run twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Double,
    Insert,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    type_coerce,
    update,
)

from kubestack_ai.plugins.models import DiagnosticResult, Severity, Status, utcnow

from ._base import Part, short_key
from .members import STALE_FACTOR, Scope, scope
from .models import RunRow, TargetLatestRow

MIN_GAP = 30.0
"""The interval assumed at least: two runs started by hand a moment apart do not make a
target stale a moment later."""
STATUSES = ("critical", "warning", "unknown", "healthy", "stale")
"""The statuses a page shows and filters by, worst first (stale: not run in time)."""
OUTCOMES = ("completed", "timed_out", "killed", "failed")

_L = TargetLatestRow
_RANK = {str(s): int(s) for s in Status}
_COUNTED = {o: getattr(_L, f"n_{o}") for o in OUTCOMES}


@dataclass(frozen=True, slots=True)
class TargetRecord:
    """One target as its latest run left it."""

    target_key: str
    type: str
    plugin_id: str
    run_id: str
    status: str
    outcome: str
    started_at: dt.datetime
    duration: float
    status_since: dt.datetime
    status_runs: int
    """Consecutive runs in this status, this one included."""
    stale_after: dt.datetime | None
    updated_at: dt.datetime
    worst_code: str | None
    worst_title: str | None
    findings: tuple[dict[str, Any], ...] = ()
    """Warning and critical findings, worst first: code, category, severity, title, suggestion."""
    runs: dict[str, int] = field(default_factory=dict)
    """Runs stored per outcome (completed, timed_out, killed, failed)."""

    @property
    def name(self) -> str:
        return self.target_key.split(":", 1)[-1]

    def is_stale(self, now: dt.datetime | None = None) -> bool:
        return self.stale_after is not None and self.stale_after < (now or utcnow())

    def shown_status(self, now: dt.datetime | None = None) -> str:
        """What a page shows: ``stale`` outranks the last verdict, which is out of date."""
        return "stale" if self.is_stale(now) else self.status


@dataclass(frozen=True, slots=True)
class FleetCounts:
    by_status: dict[str, int]
    by_type: dict[str, int]
    total: int


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run without its result body: for timelines and run lists."""

    run_id: str
    status: str
    outcome: str
    started_at: dt.datetime
    duration: float


@dataclass(frozen=True, slots=True)
class FindingSpan:
    """A finding across a target's recent runs."""

    code: str
    severity: str
    title: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    state: str
    """``new`` (only in the latest run), ``ongoing`` (also in the run before) or
    ``resolved`` (in an earlier run, not in the latest)."""


def latest_values(tk: str, plugin_id: str, run_id: str, result: DiagnosticResult,
                  old: Any | None, now: dt.datetime) -> dict[str, Any]:
    """The latest row after this run, computed in Python from the row before it (``old``,
    None for a first run): the insert path and the backfill. ``record_run`` updates an
    existing row in SQL (``_update``) to the same values. Only the run counts change when
    ``old`` is a newer run (a run recorded late is counted, not shown)."""
    counts = {col.key: (getattr(old, col.key) if old is not None else 0)
              + (1 if result.outcome == outcome else 0) for outcome, col in _COUNTED.items()}
    started = result.started_at
    ts = started.timestamp()
    if old is not None and old.started_ts > ts:
        return counts
    status = str(result.status)
    same = old is not None and old.status == status
    gap = ts - old.started_ts if old is not None and old.run_id != run_id else None
    return dict(
        _verdict(tk, plugin_id, run_id, result, now),
        prev_started_at=old.started_at if gap is not None and old is not None else None,
        stale_ts=ts + STALE_FACTOR * max(gap, MIN_GAP) if gap is not None else None,
        status_since=old.status_since if old is not None and same else started,
        status_runs=old.status_runs + 1 if old is not None and same else 1, **counts)


def _verdict(tk: str, plugin_id: str, run_id: str, result: DiagnosticResult,
             now: dt.datetime) -> dict[str, Any]:
    """The columns that depend on this run alone."""
    worst = sorted((f for f in result.findings if f.severity >= Severity.WARNING),
                   key=lambda f: int(f.severity), reverse=True)
    findings = [{"code": f.code, "category": f.category, "severity": str(f.severity),
                 "title": f.title, "suggestion": f.suggestion} for f in worst]
    status = str(result.status)
    return dict(
        target_key=tk, type=tk.split(":", 1)[0], plugin_id=plugin_id, run_id=run_id,
        status=status, rank=_RANK[status], outcome=result.outcome,
        started_at=result.started_at, started_ts=result.started_at.timestamp(),
        duration=result.duration, updated_at=now, worst_code=worst[0].code if worst else None,
        worst_title=worst[0].title if worst else None, findings=json.dumps(findings))


def _update_stmt() -> Any:
    """One UPDATE that moves an existing row to a run, unless it holds a newer one: the
    columns that depend on the row before (status since, runs in status, interval,
    counts) are computed by the database from the old values, so no read comes first.
    Assignments are ordered: MySQL evaluates them left to right on the new values.
    Built once, with bound parameters (building it per call cost more than running it)."""
    ts: Any = bindparam("started_ts", type_=Double())
    same = _L.status == bindparam("status")
    gap = ts - _L.started_ts
    first: list[tuple[Any, Any]] = [
        (_L.prev_started_at, _L.started_at),
        (_L.stale_ts, case((gap > MIN_GAP, ts + STALE_FACTOR * gap),
                           else_=ts + STALE_FACTOR * MIN_GAP)),
        (_L.status_since, case((same, _L.status_since),
                               else_=bindparam("started_at", type_=_L.status_since.type))),
        (_L.status_runs, case((same, _L.status_runs + 1), else_=1)),
    ]
    counts = [(col, col + bindparam(f"d_{o}")) for o, col in _COUNTED.items()]
    rest = [(getattr(_L, k), bindparam(k, type_=getattr(_L, k).type)) for k in _VERDICT
            if k not in ("target_key", "started_ts", "status", "started_at")]
    rest += [(_L.started_ts, ts), (_L.status, bindparam("status")),
             (_L.started_at, bindparam("started_at", type_=_L.started_at.type))]
    return (update(_L).where(_L.target_key == bindparam("tk"), _L.started_ts <= ts)
            .ordered_values(*first, *counts, *rest))


_VERDICT = ("target_key", "type", "plugin_id", "run_id", "status", "rank", "outcome",
            "started_at", "started_ts", "duration", "updated_at", "worst_code", "worst_title",
            "findings")
_UPDATE = _update_stmt()


def _update_params(tk: str, plugin_id: str, run_id: str, result: DiagnosticResult,
                   now: dt.datetime) -> dict[str, Any]:
    params = _verdict(tk, plugin_id, run_id, result, now)
    params["tk"] = params.pop("target_key")
    params.update({f"d_{o}": 1 if result.outcome == o else 0 for o in OUTCOMES})
    return params


def latest_put(c: Connection, tk: str, plugin_id: str, run_id: str,
               result: DiagnosticResult, now: dt.datetime) -> None:
    """Keep ``ksa_target_latest`` at the newest run of ``tk``, inside record_run's
    transaction, in one statement on the common path: an UPDATE computed from the
    old row (row-locked by the database); a first run inserts; a run older than the
    row only adds to its counts."""
    params = _update_params(tk, plugin_id, run_id, result, now)
    if c.execute(_UPDATE, params).rowcount:
        return
    # no row, or a newer run's. (An insert's rowcount is no answer: psycopg reports
    # -1 for ON CONFLICT DO NOTHING, MySQL 1 for an unchanged duplicate.)
    c.execute(_insert_new(c.dialect.name),
              latest_values(tk, plugin_id, run_id, result, None, now))
    mine = select(_L.run_id).where(_L.target_key == tk)
    if c.execute(mine).scalar() == short_key(run_id):
        return
    # the row exists: newer than this run, or inserted by another process meanwhile
    if c.execute(_UPDATE, params).rowcount:
        return
    c.execute(update(_L).where(_L.target_key == tk).values(
        {col: col + 1 for o, col in _COUNTED.items() if o == result.outcome}))


class Fleet(Part):
    """The fleet's view: reads of ``ksa_target_latest`` (which rows are the fleet's is
    ``members.py``'s) and of one target's runs."""

    # -- the fleet ----------------------------------------------------------------------

    def fleet_counts(self, now: dt.datetime | None = None, *,
                     adhoc: bool = False) -> FleetCounts:
        """Targets per shown status (stale counted as stale, not as its last verdict)
        and per middleware type: the fleet's, or (``adhoc``) the one-off targets'."""
        now = now or utcnow()
        return self._core(lambda c: _Counts(c, scope(c, adhoc), now, None).counts(None, None),
                          what="fleet_counts")

    def fleet_targets(self, *, status: str | None = None, type: str | None = None,
                      text: str | None = None, limit: int = 200, offset: int = 0,
                      now: dt.datetime | None = None,
                      adhoc: bool = False) -> tuple[list[TargetRecord], int]:
        """A page of the fleet (or of the one-off targets), worst first, and how many
        targets match in all. ``status`` is a shown status (``stale``: not run in time,
        whatever it said; ``healthy``: healthy and not stale); ``text`` matches part of
        the target key."""
        page = _Page(status, type, text, limit, offset, now or utcnow())

        def fn(c: Connection) -> tuple[list[TargetRecord], int]:
            sc = scope(c, adhoc)
            return page.rows(c, sc), page.total(c, sc)
        return self._core(fn, what="fleet_targets")

    def fleet_page(self, *, status: str | None = None, type: str | None = None,
                   text: str | None = None, limit: int = 200, offset: int = 0,
                   now: dt.datetime | None = None, adhoc: bool = False
                   ) -> tuple[FleetCounts, list[TargetRecord], int]:
        """What ``/`` shows, in one transaction: the counts as the filters show them
        (per status under the type and text filters, per type under the status and text
        filters; ``total``: every target in scope), a page, and how many match."""
        now = now or utcnow()
        page = _Page(status, type, text, limit, offset, now)

        def fn(c: Connection) -> tuple[FleetCounts, list[TargetRecord], int]:
            sc = scope(c, adhoc)
            groups = _Counts(c, sc, now, text)
            return groups.counts(status, type), page.rows(c, sc), groups.matching(status, type)
        return self._core(fn, what="fleet_page")

    def all_targets(self) -> list[TargetRecord]:
        """Every fleet target's latest state, by key (``/metrics``, the notifier)."""
        def fn(c: Connection) -> list[TargetRecord]:
            sc = scope(c)
            q = _select(sc).where(*sc.where()).order_by(_L.target_key)
            return [_target(r) for r in c.execute(q)]
        return self._core(fn, what="all_targets")

    def metric_rows(self) -> Sequence[tuple[Any, ...]]:
        """Every fleet target as ``/metrics`` needs it, lean (no records, no datetimes,
        findings as JSON text): (key, type, status, status_runs, stale_ts, started_ts,
        duration, findings, n_completed, n_timed_out, n_killed, n_failed). One fetch of
        plain values: at 10,000 targets, building a record or a datetime per row costs
        more than the query."""
        def fn(c: Connection) -> Sequence[tuple[Any, ...]]:
            sc = scope(c)
            q = (select(_L.target_key, _L.type, _L.status, _L.status_runs, sc.stale_ts,
                        _L.started_ts, _L.duration, _L.findings, *_COUNTED.values())
                 .select_from(sc.source).where(*sc.where()).order_by(_L.target_key))
            return c.execute(q).all()
        return self._core(fn, what="metric_rows")

    def targets_changed(self, since: dt.datetime) -> list[TargetRecord]:
        """Fleet targets whose latest row was written after ``since`` (the notifier's poll)."""
        def fn(c: Connection) -> list[TargetRecord]:
            sc = scope(c)
            q = _select(sc).where(_L.updated_at > since, *sc.where()).order_by(_L.updated_at)
            return [_target(r) for r in c.execute(q)]
        return self._core(fn, what="targets_changed")

    def targets_at_least(self, status: str) -> list[TargetRecord]:
        """Fleet targets whose latest verdict is ``status`` or worse (warning: warning,
        critical)."""
        def fn(c: Connection) -> list[TargetRecord]:
            sc = scope(c)
            q = _select(sc).where(_L.rank >= _RANK[status], *sc.where()).order_by(_L.target_key)
            return [_target(r) for r in c.execute(q)]
        return self._core(fn, what="targets_at_least")

    def target(self, target_key: str) -> TargetRecord | None:
        """One target's latest state, the fleet's or a one-off one."""
        def fn(c: Connection) -> Any:
            return c.execute(_select(scope(c)).where(_L.target_key == short_key(target_key))
                             ).first()
        row = self._core(fn, what="target")
        return None if row is None else _target(row)

    # -- one target ---------------------------------------------------------------------

    def run_summaries(self, target_key: str, limit: int = 200) -> list[RunSummary]:
        """Runs of one target, newest first, without their result bodies."""
        q = (select(RunRow.run_id, RunRow.status, RunRow.outcome, RunRow.started_at,
                    RunRow.duration)
             .where(RunRow.target_key == short_key(target_key))
             .order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(limit))
        rows = self._core(lambda c: list(c.execute(q)), what="run_summaries")
        return [RunSummary(*r) for r in rows]

    def finding_spans(self, target_key: str, limit: int = 100) -> list[FindingSpan]:
        """Warning and critical findings over the last ``limit`` completed runs: when each
        first appeared in its current streak, and whether it is new, ongoing or resolved."""
        q = (select(RunRow.started_at, RunRow.result)
             .where(RunRow.target_key == short_key(target_key), RunRow.outcome == "completed")
             .order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(limit))
        rows = self._core(lambda c: list(c.execute(q)), what="finding_spans")
        runs = [(at, {f["code"]: f for f in json.loads(body).get("findings", [])
                      if f.get("severity") in ("warning", "critical")}) for at, body in rows]
        return spans(runs)

    def plugin_targets(self) -> dict[str, int]:
        """Plugin id -> how many of the fleet's targets its latest run used (the web
        view's plugins page; one grouped count over the latest rows)."""
        def fn(c: Connection) -> dict[str, int]:
            sc = scope(c)
            q = (select(_L.plugin_id, func.count()).select_from(sc.source).where(*sc.where())
                 .group_by(_L.plugin_id).order_by(_L.plugin_id))
            return {p: int(n) for p, n in c.execute(q)}
        return self._core(fn, what="plugin_targets")

    def run_resources(self, run_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Run id -> what the run cost its plugin host (the stored result's ``resources``:
        ``peak_rss_mb``, ``cpu_seconds``, ``isolation``, ``children_killed``,
        ``refused_network``), for the runs among ``run_ids`` that ran in one. Only that
        part of each result is read, extracted in SQL (the web view's run list)."""
        if not run_ids:
            return {}
        res = _doc(self.db.engine.dialect.name)["resources"]
        q = select(RunRow.run_id, res).where(RunRow.run_id.in_(list(run_ids)))
        rows = self._core(lambda c: c.execute(q).all(), what="run_resources")
        return {r: v for r, v in rows if isinstance(v, dict)}

    def host_resources(self) -> list[tuple[str, int, float, float]]:
        """Per middleware type, over the targets whose latest run ran in a plugin host
        (plugins/isolation): (type, targets, CPU seconds summed, largest peak memory in
        MB), read from the stored results in SQL (``/metrics``; one row per type)."""
        doc = _doc(self.db.engine.dialect.name)
        cpu = doc["resources"]["cpu_seconds"].as_float()
        peak = doc["resources"]["peak_rss_mb"].as_float()
        q = (select(_L.type, func.count(), func.sum(cpu), func.max(peak))
             .join(RunRow, RunRow.run_id == _L.run_id)
             .where(cpu.is_not(None)).group_by(_L.type).order_by(_L.type))
        rows = self._core(lambda c: c.execute(q).all(), what="host_resources")
        return [(t, int(n), float(c or 0.0), float(p or 0.0)) for t, n, c, p in rows]


def _doc(dialect: str) -> Any:
    """The stored result (text) as JSON, for extractions in SQL: PostgreSQL's ``->``
    needs a cast; SQLite's and MySQL's JSON functions read the text as it is."""
    return (cast(RunRow.result, JSON) if dialect == "postgresql"
            else type_coerce(RunRow.result, JSON))


def _select(sc: Scope) -> Any:
    """Latest rows with when each is stale (``stale_at``), over the membership join."""
    return select(_L, sc.stale_ts.label("stale_at")).select_from(sc.source)


def _stale(now: dt.datetime, sc: Scope) -> Any:
    stale_ts = sc.stale_ts
    return and_(stale_ts.is_not(None), stale_ts < now.timestamp())


class _Counts:
    """The fleet's (status, stale, type, matches the text) groups, in one scan: every
    count card under the filters."""

    def __init__(self, c: Connection, sc: Scope, now: dt.datetime, text: str | None) -> None:
        stale = _stale(now, sc)
        cols: list[Any] = [_L.status, stale, _L.type]
        if text:
            cols.append(_like(text))
        q = (select(*cols, func.count()).select_from(sc.source).where(*sc.where())
             .group_by(*cols))
        self.groups = [("stale" if r[1] else r[0], r[2], bool(r[3]) if text else True, r[-1])
                       for r in c.execute(q)]

    def counts(self, status: str | None, type: str | None) -> FleetCounts:
        by_status: Counter[str] = Counter({s: 0 for s in STATUSES})
        by_type: Counter[str] = Counter()
        for shown, mtype, hit, n in self.groups:
            by_type[mtype] += 0
            if hit and (not type or mtype == type):
                by_status[shown] += n
            if hit and (not status or shown == status):
                by_type[mtype] += n
        total = sum(n for *_, n in self.groups)
        return FleetCounts(dict(by_status), dict(sorted(by_type.items())), total)

    def matching(self, status: str | None, type: str | None) -> int:
        return sum(n for shown, mtype, hit, n in self.groups
                   if hit and (not status or shown == status) and (not type or mtype == type))


def _like(text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return _L.target_key.like(f"%{escaped}%", escape="\\")


class _Page:
    """The statements of one filtered page of the fleet."""

    def __init__(self, status: str | None, type: str | None, text: str | None, limit: int,
                 offset: int, now: dt.datetime) -> None:
        self.status, self.type, self.text = status, type, text
        self.limit, self.offset, self.now = limit, offset, now

    def conds(self, sc: Scope) -> list[Any]:
        conds: list[Any] = list(sc.where())
        if self.status == "stale":
            conds.append(_stale(self.now, sc))
        elif self.status:
            stale_ts = sc.stale_ts
            conds += [_L.status == self.status,
                      or_(stale_ts.is_(None), stale_ts >= self.now.timestamp())]
        if self.type:
            conds.append(_L.type == self.type)
        if self.text:
            conds.append(_like(self.text))
        return conds

    def rows(self, c: Connection, sc: Scope) -> list[TargetRecord]:
        q = (_select(sc).where(*self.conds(sc)).order_by(_L.rank.desc(), _L.target_key)
             .limit(self.limit).offset(self.offset))
        return [_target(r) for r in c.execute(q)]

    def total(self, c: Connection, sc: Scope) -> int:
        q = select(func.count()).select_from(sc.source).where(*self.conds(sc))
        return int(c.execute(q).scalar() or 0)


def spans(runs: list[tuple[dt.datetime, dict[str, dict[str, Any]]]]) -> list[FindingSpan]:
    """``runs``: (started_at, findings by code), newest first."""
    if not runs:
        return []
    latest = runs[0][1]
    out: list[FindingSpan] = []
    seen: set[str] = set()
    for code, f in latest.items():
        first = runs[0][0]
        for at, found in runs[1:]:
            if code not in found:
                break
            first = at
        state = "ongoing" if len(runs) > 1 and code in runs[1][1] else "new"
        out.append(FindingSpan(code, f["severity"], f["title"], first, runs[0][0], state))
        seen.add(code)
    for at, found in runs[1:]:
        for code, f in found.items():
            if code not in seen:
                seen.add(code)
                out.append(FindingSpan(code, f["severity"], f["title"], at, at, "resolved"))
    order = {"new": 0, "ongoing": 1, "resolved": 2}
    return sorted(out, key=lambda s: (order[s.state], -_RANK.get(s.severity, 0), s.code))


def _target(r: Any) -> TargetRecord:
    return TargetRecord(
        target_key=r.target_key, type=r.type, plugin_id=r.plugin_id, run_id=r.run_id,
        status=r.status, outcome=r.outcome, started_at=r.started_at, duration=r.duration,
        status_since=r.status_since, status_runs=r.status_runs,
        stale_after=None if r.stale_at is None else dt.datetime.fromtimestamp(r.stale_at, dt.UTC),
        updated_at=r.updated_at,
        worst_code=r.worst_code, worst_title=r.worst_title,
        findings=tuple(json.loads(r.findings)) if r.findings != "[]" else (),
        runs={o: getattr(r, col.key) for o, col in _COUNTED.items()})


@lru_cache(maxsize=8)
def _insert_new(dialect: str) -> Insert:
    """INSERT of a first latest row that does nothing when another process inserted it."""
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        m = mysql_insert(_L)
        return m.on_duplicate_key_update(target_key=m.inserted.target_key)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(_L).on_conflict_do_nothing(index_elements=["target_key"])
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(_L).on_conflict_do_nothing(index_elements=["target_key"])
    return insert(_L)


def backfill(c: Connection) -> int:
    """Fill ``ksa_target_latest`` from the history (the migration that adds the table):
    the newest run of every target, the one before it for the interval, and the counts
    per outcome. Returns how many targets."""
    rn = func.row_number().over(partition_by=RunRow.target_key,
                                order_by=(RunRow.started_at.desc(), RunRow.id.desc()))
    sub = select(RunRow.id, rn.label("rn")).subquery()
    q = (select(RunRow.target_key, RunRow.plugin_id, RunRow.run_id, RunRow.started_at,
                RunRow.result, sub.c.rn)
         .join(sub, RunRow.id == sub.c.id).where(sub.c.rn <= 2)
         .order_by(RunRow.target_key, sub.c.rn.desc()))
    counts: dict[str, Counter[str]] = {}
    for tk, outcome, n in c.execute(select(RunRow.target_key, RunRow.outcome, func.count())
                                    .group_by(RunRow.target_key, RunRow.outcome)):
        counts.setdefault(tk, Counter())[outcome] = n
    now = utcnow()
    rows: dict[str, dict[str, Any]] = {}
    for tk, pid, run_id, _at, body, _rn in c.execute(q):
        result = DiagnosticResult.model_validate_json(body)
        old = rows.get(tk)
        prev = None if old is None else _Prev(old)
        values = latest_values(tk, pid, run_id, result, prev, now)
        values.update({col.key: counts.get(tk, Counter())[o] for o, col in _COUNTED.items()})
        rows[tk] = values
    if rows:
        c.execute(insert(_L), list(rows.values()))
    return len(rows)


class _Prev:
    """A latest row not yet written, read as ``latest_values`` reads a stored one."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
