"""Plugin state shared by every worker."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kubestack_ai.plugins.models import PluginState, utcnow

from ._base import Part
from .errors import StorageError
from .models import PluginStateRow
from .records import PluginStateRecord


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Default of ``set_plugin_state(last_error=...)``: not given, keep the stored value
(``None`` given explicitly clears it)."""


class PluginStates(Part):
    """Plugin state shared by every worker (``ksa_plugin_state``)."""

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

    def record_reload(self, plugin_id: str, source: str | None) -> PluginStateRecord:
        """A reload succeeded (from ``source``, a code location, when it named one): bump
        the generation; ``source`` becomes the newest of the plugin's sources."""
        def change(row: PluginStateRow) -> None:
            if source is not None:
                row.sources = json.dumps([*json.loads(row.sources or "[]"), source])

        return self._bump(plugin_id, change, "record_reload")

    def request_rollback(self, plugin_id: str) -> PluginStateRecord:
        """Go back to the location before the newest one, for every worker: drop the
        newest source and bump the generation. StorageError when there is none to go
        back to (no reload named one since the plugin's own directory)."""
        def change(row: PluginStateRow) -> None:
            sources = json.loads(row.sources or "[]")
            if not sources:
                raise StorageError(f"plugin {plugin_id!r}: no reload from another location to "
                                   "roll back (reload with --from PATH to keep versions apart)")
            row.sources = json.dumps(sources[:-1])

        return self._bump(plugin_id, change, "request_rollback")

    def _bump(self, plugin_id: str, change: Any, what: str) -> PluginStateRecord:
        def fn(s: Session) -> PluginStateRecord:
            row = s.get(PluginStateRow, plugin_id, with_for_update=True)
            if row is None:
                row = _new(plugin_id)
                s.add(row)
            change(row)
            row.generation += 1
            row.updated_at = utcnow()
            s.flush()
            return _state(row)

        return self._tx(fn, write=True, retry_integrity=True, passthrough=(StorageError,),
                        what=what)


def _new(plugin_id: str) -> PluginStateRow:
    return PluginStateRow(plugin_id=plugin_id, enabled=True, version="",
                          state=PluginState.UNLOADED.value, config="{}", last_error=None,
                          generation=0, updated_at=utcnow())


def _state(r: PluginStateRow) -> PluginStateRecord:
    return PluginStateRecord(plugin_id=r.plugin_id, enabled=r.enabled, version=r.version,
                             state=r.state, config=json.loads(r.config),
                             last_error=r.last_error, generation=r.generation,
                             updated_at=r.updated_at, sources=tuple(json.loads(r.sources or "[]")))

