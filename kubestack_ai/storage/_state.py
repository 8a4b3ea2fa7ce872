"""Plugin state shared by every worker, and the audit log of executed actions."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kubestack_ai.plugins.models import PluginState, utcnow

from ._base import StoreBase, short_key
from .errors import StorageError
from .models import ID_LEN, AuditRow, PluginStateRow
from .records import AuditRecord, PluginStateRecord


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Default of ``set_plugin_state(last_error=...)``: not given, keep the stored value
(``None`` given explicitly clears it)."""


class StateMixin(StoreBase):

    def get_plugin_state(self, plugin_id: str) -> PluginStateRecord | None:
        row = self._tx(lambda s: s.get(PluginStateRow, plugin_id), what="get_plugin_state")
        return None if row is None else _state(row)

    def list_plugin_states(self) -> list[PluginStateRecord]:
        q = select(PluginStateRow).order_by(PluginStateRow.plugin_id)
        return [_state(r) for r in self._tx(lambda s: list(s.scalars(q)),
                                            what="list_plugin_states")]

    def set_plugin_state(self, plugin_id: str, *, enabled: bool | None = None,
                         version: str | None = None, state: str | PluginState | None = None,
                         config: dict[str, Any] | None = None, last_error: str | None = UNSET,
                         reload: bool = False) -> PluginStateRecord:
        """Create or update a plugin's state; only the fields given change (``last_error=None``
        clears the error). ``reload=True`` also bumps the generation, as request_reload."""
        if config is not None:
            try:
                config_json = json.dumps(config, sort_keys=True)
            except (TypeError, ValueError) as e:
                raise StorageError(f"plugin {plugin_id!r}: config is not JSON: {e}") from None

        def fn(s: Session) -> PluginStateRecord:
            row = s.get(PluginStateRow, plugin_id, with_for_update=True)
            if row is None:
                row = _new(plugin_id)
                s.add(row)
            if enabled is not None:
                row.enabled = enabled
            if version is not None:
                row.version = version
            if state is not None:
                row.state = str(state.value if isinstance(state, PluginState) else state)
            if config is not None:
                row.config = config_json
            if last_error is not UNSET:
                row.last_error = last_error
            if reload:
                row.generation += 1
            row.updated_at = utcnow()
            s.flush()
            return _state(row)

        return self._tx(fn, write=True, retry_integrity=True, what="set_plugin_state")

    def request_reload(self, plugin_id: str) -> int:
        """Bump the plugin's generation and return it. Workers compare it with the one they
        loaded before each task and reload when it moved (atomic across processes)."""
        def fn(s: Session) -> int:
            bump = (update(PluginStateRow).where(PluginStateRow.plugin_id == plugin_id)
                    .values(generation=PluginStateRow.generation + 1, updated_at=utcnow()))
            n = s.connection().execute(bump).rowcount
            if n == 0:
                row = _new(plugin_id)
                row.generation = 1
                s.add(row)
                s.flush()
                return 1
            gen = s.scalar(select(PluginStateRow.generation)
                           .where(PluginStateRow.plugin_id == plugin_id))
            return int(gen or 0)

        return self._tx(fn, write=True, retry_integrity=True, what="request_reload")

    # -- audit log ----------------------------------------------------------------------

    def record_action(self, record: dict[str, Any]) -> None:
        """Append one executed (or refused) action: a ``PluginManager.audit_hooks`` record
        (plugin_id, target, action, params, ok, error, at, result)."""
        at = _when(record.get("at"))
        body = json.dumps(record, default=str, sort_keys=True)
        row = AuditRow(at=at, plugin_id=short_key(str(record.get("plugin_id", "")), ID_LEN),
                       target=short_key(str(record.get("target", ""))),
                       action=short_key(str(record.get("action", "")), ID_LEN),
                       ok=bool(record.get("ok")),
                       error=None if record.get("error") is None else str(record["error"]),
                       record=body)
        self._tx(lambda s: s.add(row), write=True, what="record_action")

    def audit_log(self, limit: int = 50, targets: Iterable[str] = ()) -> list[AuditRecord]:
        """Newest first; only actions on ``targets`` (names or keys) when given."""
        q = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
        names = [short_key(t) for t in targets]
        if names:
            q = q.where(AuditRow.target.in_(names))
        rows = self._tx(lambda s: list(s.scalars(q)), what="audit_log")
        out = []
        for r in rows:
            full = json.loads(r.record)
            out.append(AuditRecord(id=r.id, at=r.at, plugin_id=r.plugin_id, target=r.target,
                                   action=r.action, ok=r.ok, error=r.error,
                                   params=full.get("params") or {}, result=full.get("result")))
        return out


def _new(plugin_id: str) -> PluginStateRow:
    return PluginStateRow(plugin_id=plugin_id, enabled=True, version="",
                          state=PluginState.UNLOADED.value, config="{}", last_error=None,
                          generation=0, updated_at=utcnow())


def _state(r: PluginStateRow) -> PluginStateRecord:
    return PluginStateRecord(plugin_id=r.plugin_id, enabled=r.enabled, version=r.version,
                             state=r.state, config=json.loads(r.config),
                             last_error=r.last_error, generation=r.generation,
                             updated_at=r.updated_at)


def _when(value: object) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            return _when(dt.datetime.fromisoformat(value))
        except ValueError:
            pass
    return utcnow()
