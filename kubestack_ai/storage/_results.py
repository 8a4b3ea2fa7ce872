"""Run history and the result cache (TTL), both keyed so that recording is idempotent."""

from __future__ import annotations

import datetime as dt
import json
import math
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kubestack_ai.plugins.models import DiagnosticResult, Snapshot, utcnow

from ._base import Part, categories_key, short_key
from ._fleet import latest_put
from .errors import StorageError
from .models import CachedResultRow, RunRow
from .records import RunRecord

MAX_TTL = 10 * 365 * 24 * 3600.0
"""Seconds a cache entry may live at most (any longer overflows a date)."""
_CACHE_UPDATE = ("run_id", "created_at", "expires_at", "result")
_NOT_COMPLETED = ("timed_out", "killed", "failed")

# The hot paths' statements, built once: Core with bound parameters, compiled once per
# dialect by SQLAlchemy's cache.
_RUN_INSERT = insert(RunRow)
_CACHED = (select(CachedResultRow.result)
           .where(CachedResultRow.target_key == bindparam("tk"),
                  CachedResultRow.plugin_id == bindparam("pid"),
                  CachedResultRow.categories == bindparam("cats"),
                  CachedResultRow.expires_at > bindparam("now")))


class Runs(Part):
    """The run history (``ksa_run``) and the result cache (``ksa_result_cache``)."""

    def record_run(self, run_id: str, target_key: str, plugin_id: str,
                   categories: tuple[str, ...], result: DiagnosticResult, ttl: float | None,
                   *, supersede_failed: bool = False) -> bool:
        """Store one run in the history, and in the cache (expiring now + ``ttl``) when
        ``ttl`` is positive and the run completed. Idempotent by ``run_id``: a second
        call changes nothing and returns False (Celery may fire failure hooks twice and
        redeliver a task).

        ``supersede_failed``: a run already stored under this id as timed out, killed or
        failed is replaced by this one (a task redelivered after its worker died, whose
        loss was recorded first). A completed run is never replaced.
        """
        if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)
                                or not math.isfinite(ttl) or not -MAX_TTL <= ttl <= MAX_TTL):
            raise StorageError(f"record_run {run_id}: ttl must be a number of seconds up to "
                               f"{MAX_TTL:g}")
        now = utcnow()
        tk, cats = short_key(target_key), categories_key(categories)
        body = result.model_dump_json()
        rid = short_key(run_id)
        row = dict(run_id=rid, target_key=tk, plugin_id=plugin_id, categories=cats,
                   status=str(result.status), outcome=result.outcome,
                   started_at=result.started_at, duration=result.duration, recorded_at=now,
                   result=body)

        def fn(c: Connection) -> bool:
            c.execute(_RUN_INSERT, row)  # a duplicate run_id fails here, before the cache
            self._cache_put(c, tk, plugin_id, cats, rid, result, body, ttl, now)
            latest_put(c, tk, plugin_id, rid, result, now)
            return True

        def replace(c: Connection) -> bool:
            n = c.execute(update(RunRow)
                          .where(RunRow.run_id == rid,
                                 RunRow.outcome.in_(_NOT_COMPLETED))
                          .values(**{k: v for k, v in row.items() if k != "run_id"})).rowcount
            if n:
                self._cache_put(c, tk, plugin_id, cats, rid, result, body, ttl, now)
                latest_put(c, tk, plugin_id, rid, result, now)
            return bool(n)

        try:
            return self._core(fn, write=True, passthrough=(IntegrityError,), what="record_run")
        except IntegrityError:
            if supersede_failed and result.outcome == "completed":
                return self._core(replace, write=True, what="record_run")
            return False

    def _cache_put(self, c: Connection, tk: str, plugin_id: str, cats: str, run_id: str,
                   result: DiagnosticResult, body: str, ttl: float | None,
                   now: dt.datetime) -> None:
        if not ttl or ttl <= 0 or result.outcome != "completed" or not _read_any(result):
            return
        values: dict[str, Any] = dict(target_key=tk, plugin_id=plugin_id, categories=cats,
                                      run_id=run_id, created_at=now,
                                      expires_at=now + dt.timedelta(seconds=ttl), result=body)
        c.execute(_upsert(c.dialect.name), values)

    def cached_result(self, target_key: str, plugin_id: str,
                      categories: tuple[str, ...]) -> DiagnosticResult | None:
        """The fresh cached result for exactly this target, plugin and category set
        (order-insensitive; empty = all), with outcome "cached"; None on a miss."""
        params = {"tk": short_key(target_key), "pid": plugin_id,
                  "cats": categories_key(categories), "now": utcnow()}
        body = self._core(lambda c: c.execute(_CACHED, params).scalar(), what="cached_result")
        if body is None:
            return None
        return DiagnosticResult.model_validate_json(body).model_copy(update={"outcome": "cached"})

    def invalidate(self, target_key: str, plugin_id: str | None = None) -> int:
        """Drop cached results of a target (of one plugin, or all). Returns rows removed."""
        cond = [CachedResultRow.target_key == short_key(target_key)]
        if plugin_id is not None:
            cond.append(CachedResultRow.plugin_id == plugin_id)
        stmt = delete(CachedResultRow).where(*cond)
        return int(self._core(lambda c: c.execute(stmt).rowcount, write=True, what="invalidate"))

    def purge_expired(self) -> int:
        """Delete expired cache entries; returns how many."""
        stmt = delete(CachedResultRow).where(CachedResultRow.expires_at <= utcnow())
        return int(self._core(lambda c: c.execute(stmt).rowcount, write=True,
                              what="purge_expired"))

    def latest_results(self) -> list[RunRecord]:
        """The newest run of every target, ordered by target key."""
        rn = func.row_number().over(partition_by=RunRow.target_key,
                                    order_by=(RunRow.started_at.desc(), RunRow.id.desc()))
        sub = select(RunRow.id, rn.label("rn")).subquery()
        q = (select(RunRow).join(sub, RunRow.id == sub.c.id).where(sub.c.rn == 1)
             .order_by(RunRow.target_key))
        rows = self._tx(lambda s: list(s.scalars(q)), what="latest_results")
        return [_record(r) for r in rows]

    def history(self, target_key: str, limit: int = 20) -> list[RunRecord]:
        """Runs of one target, newest first."""
        q = (select(RunRow).where(RunRow.target_key == short_key(target_key))
             .order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(limit))
        rows = self._tx(lambda s: list(s.scalars(q)), what="history")
        return [_record(r) for r in rows]

    def plugin_runs(self, plugin_id: str, since: dt.datetime,
                    limit: int = 100_000) -> list[RunRecord]:
        """Runs of one plugin started at or after ``since``, oldest first (a canary's
        comparison: each result names the plugin version that ran)."""
        q = (select(RunRow).where(RunRow.plugin_id == plugin_id, RunRow.started_at >= since)
             .order_by(RunRow.started_at, RunRow.id).limit(limit))
        rows = self._tx(lambda s: list(s.scalars(q)), what="plugin_runs")
        return [_record(r) for r in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        q = select(RunRow).where(RunRow.run_id == short_key(run_id))
        row = self._tx(lambda s: s.scalar(q), what="get_run")
        return None if row is None else _record(row)

    def snapshots(self, target_key: str, plugin_id: str, limit: int = 10) -> tuple[Snapshot, ...]:
        """Metrics of the last ``limit`` completed runs, oldest first, for
        ``DiagnoseOptions(history=...)``."""
        q = (select(RunRow.started_at, RunRow.result)
             .where(RunRow.target_key == short_key(target_key), RunRow.plugin_id == plugin_id,
                    RunRow.outcome == "completed")
             .order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(limit))
        rows = self._tx(lambda s: list(s.execute(q)), what="snapshots")
        return tuple(Snapshot(at=at, metrics=json.loads(body).get("metrics", {}))
                     for at, body in reversed(rows))


def _read_any(result: DiagnosticResult) -> bool:
    """At least one category completed: a result that read nothing is never served from
    the cache (the next task must look again)."""
    cats = result.categories
    return not cats or any(c not in result.errors for c in cats)


def _record(r: RunRow) -> RunRecord:
    return RunRecord(run_id=r.run_id, target_key=r.target_key, plugin_id=r.plugin_id,
                     status=r.status, outcome=r.outcome, started_at=r.started_at,
                     duration=r.duration, result=DiagnosticResult.model_validate_json(r.result),
                     categories=tuple(c for c in r.categories.split(",") if c),
                     recorded_at=r.recorded_at)


@lru_cache(maxsize=8)
def _upsert(dialect: str) -> Insert:
    """INSERT of a cache entry that replaces the one with the same key, atomically."""
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        m = mysql_insert(CachedResultRow)
        return m.on_duplicate_key_update({k: m.inserted[k] for k in _CACHE_UPDATE})
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        p = pg_insert(CachedResultRow)
        return p.on_conflict_do_update(constraint="uq_ksa_result_cache_key",
                                       set_={k: p.excluded[k] for k in _CACHE_UPDATE})
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        q = sqlite_insert(CachedResultRow)
        return q.on_conflict_do_update(
            index_elements=["target_key", "plugin_id", "categories"],
            set_={k: q.excluded[k] for k in _CACHE_UPDATE})
    raise AssertionError(f"unreachable: engine.parse_url refuses the {dialect} dialect")
