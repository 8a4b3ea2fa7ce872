"""The audit log of executed actions: every attempt written before it runs, completed
after, closed when the process running it died."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kubestack_ai.plugins.models import utcnow

from ._base import Part, short_key
from .errors import StorageError
from .models import ID_LEN, AuditRow
from .records import AuditRecord


class Audit(Part):
    """The audit log (``ksa_audit``)."""

    def record_action(self, record: dict[str, Any], task_id: str | None = None) -> int:
        """Append one attempted action (an ``ActionRecord`` as JSON: who, plugin_id,
        target, action, params, dry_run, outcome, error, result, at, duration; or the
        older dict with ``ok``), run by Celery task ``task_id`` if any. Returns the row
        id, for :meth:`update_action`."""
        row = AuditRow(**_audit_columns(record),
                       task_id=None if task_id is None else short_key(task_id))

        def fn(s: Session) -> int:
            s.add(row)
            s.flush()
            return int(row.id)

        return self._tx(fn, write=True, what="record_action")

    def update_action(self, audit_id: int, record: dict[str, Any]) -> None:
        """Complete the row an attempt wrote before it ran (its outcome, result, duration)."""
        cols = _audit_columns(record)
        stmt = update(AuditRow).where(AuditRow.id == audit_id).values(**cols)

        def fn(s: Session) -> None:
            if s.connection().execute(stmt).rowcount != 1:
                raise StorageError(f"audit record {audit_id} not found")

        self._tx(fn, write=True, what="update_action")

    def end_started_action(self, task_id: str, outcome: str, error: str,
                           ended_at: dt.datetime) -> int:
        """Close the row task ``task_id`` wrote before its action ran, if it still says
        ``started`` (the process running it died): ``outcome`` (``killed``), ``error``
        the reason, the duration up to ``ended_at``. How many rows were closed: 0 when
        the action had ended (its own result stands) or never began."""
        q = select(AuditRow).where(AuditRow.task_id == short_key(task_id),
                                   AuditRow.outcome == "started")
        return self._tx(lambda s: _close(s, q, outcome, lambda _: error, ended_at),
                        write=True, what="end_started_action")

    def close_abandoned_actions(self, older_than: float, now: dt.datetime | None = None) -> int:
        """Rows still ``started`` ``older_than`` seconds (past the longest time limit an
        action has) after they began: their process died and nobody closed them (a
        worker lost with its main process, ``ksa action`` killed). They become
        ``abandoned``; the duration is up to now, an upper bound. How many."""
        now = now or utcnow()
        q = select(AuditRow).where(AuditRow.outcome == "started",
                                   AuditRow.at < now - dt.timedelta(seconds=older_than))

        def why(r: AuditRow) -> str:
            return (f"abandoned: no result {(now - _when(r.at)).total_seconds():.0f} s after "
                    f"it started, longer than an action may run ({older_than:g} s): the "
                    f"process running it died; how far it got is unknown")
        return self._tx(lambda s: _close(s, q, "abandoned", why, now), write=True,
                        what="close_abandoned_actions")

    def audit_log(self, limit: int = 50, target: str | None = None) -> list[AuditRecord]:
        """Newest first; of one target (its key) when given."""
        q = select(AuditRow)
        if target is not None:
            q = q.where(AuditRow.target == short_key(target))
        q = q.order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
        rows = self._tx(lambda s: list(s.scalars(q)), what="audit_log")
        return [_audit(r) for r in rows]


def _close(s: Session, q: Any, outcome: str, why: Any, ended_at: dt.datetime) -> int:
    rows = list(s.scalars(q.with_for_update()))
    for r in rows:
        record = json.loads(r.record)
        duration = max(0.0, round((ended_at - _when(r.at)).total_seconds(), 6))
        for k, v in _audit_columns({**record, "outcome": outcome, "error": why(r),
                                    "duration": duration}).items():
            setattr(r, k, v)
    return len(rows)


def _audit_columns(record: dict[str, Any]) -> dict[str, Any]:
    outcome = record.get("outcome") or ("succeeded" if record.get("ok") else "failed")
    return dict(at=_when(record.get("at")), outcome=outcome,
                plugin_id=short_key(str(record.get("plugin_id", "")), ID_LEN),
                target=short_key(str(record.get("target", ""))),
                action=short_key(str(record.get("action", "")), ID_LEN),
                ok=outcome == "succeeded",
                error=None if record.get("error") is None else str(record["error"]),
                record=json.dumps({**record, "outcome": outcome}, default=str, sort_keys=True))


def _audit(r: AuditRow) -> AuditRecord:
    full = json.loads(r.record)
    return AuditRecord(id=r.id, at=r.at, plugin_id=r.plugin_id, target=r.target,
                       action=r.action, ok=r.ok, error=r.error,
                       params=full.get("params") or {}, result=full.get("result"),
                       who=str(full.get("who") or ""),
                       outcome=r.outcome or str(full["outcome"]),
                       dry_run=bool(full.get("dry_run")),
                       duration=float(full.get("duration") or 0.0),
                       plugin_version=str(full.get("plugin_version") or ""))


class _Writer(Protocol):
    """What ``AuditLog`` writes through: a ``Store`` (or its ``Audit``)."""

    def record_action(self, record: dict[str, Any], task_id: str | None = None) -> int: ...

    def update_action(self, audit_id: int, record: dict[str, Any]) -> None: ...


class AuditLog:
    """The audit sink of ``PluginManager.execute`` on a Store: an attempt is written
    before the action runs (a failure refuses it), and completed after."""

    def __init__(self, store: _Writer, task_id: str | None = None) -> None:
        self.store = store
        self.task_id = task_id
        """The Celery task running the action: the worker closes its row by it when the
        child dies mid-action."""

    def begin(self, record: Any) -> int:
        return self.store.record_action(record.model_dump(mode="json"), task_id=self.task_id)

    def end(self, handle: int, record: Any) -> None:
        self.store.update_action(handle, record.model_dump(mode="json"))


def _when(value: object) -> dt.datetime:
    """The record's time: a datetime or an ISO 8601 string (naive means UTC); None means
    now. Anything else is refused: an audit entry at a made-up time is worse than none."""
    if value is None:
        return utcnow()
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return _when(dt.datetime.fromisoformat(value))
        except ValueError:
            pass
    raise StorageError(f"record_action: 'at' must be a datetime or an ISO 8601 timestamp, "
                       f"not {type(value).__name__} {str(value)[:40]!r}")
