"""The registry: every loaded plugin, its config and its lifecycle state.

Thread-safe (one lock, held only for dict operations). O(1) by id and by middleware type.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .base import MiddlewarePlugin, Plugin
from .errors import DuplicatePluginError, PluginError, PluginNotFoundError
from .models import PluginConfig, PluginInfo, PluginState, PluginType
from .states import check_transition

Hook = Callable[[str, PluginState, PluginState, "PluginError | None"], None]
"""(plugin_id, old_state, new_state, error) -> None, called after every transition."""


@dataclass
class Entry:
    plugin: Plugin
    info: PluginInfo
    config: PluginConfig
    state: PluginState = PluginState.LOADED
    source: str = "builtin"
    last_error: str | None = None
    middleware_type: str | None = None
    extra: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Held around connect + diagnose/execute: one call at a time per plugin instance.
    A hot reload swaps in a new entry with its own lock, so it never waits for this one."""


class Registry:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, Entry] = {}
        self._by_type: dict[PluginType, dict[str, None]] = {t: {} for t in PluginType}
        self._by_middleware: dict[str, list[str]] = {}
        self._hooks: list[Hook] = []

    def add_hook(self, hook: Hook) -> None:
        with self._lock:
            self._hooks.append(hook)

    def register(self, plugin: Plugin, config: PluginConfig | None = None, *,
                 source: str = "builtin", info: PluginInfo | None = None) -> Entry:
        """Add a loaded plugin (Unloaded -> Loaded). A duplicate id is refused."""
        info = info if info is not None else plugin.info()
        mtype = plugin.middleware_type() if isinstance(plugin, MiddlewarePlugin) else None
        with self._lock:
            existing = self._entries.get(info.id)
            if existing is not None:
                raise DuplicatePluginError(
                    f"plugin id {info.id!r} is already registered "
                    f"(version {existing.info.version} from {existing.source}); "
                    f"refused version {info.version} from {source}"
                )
            entry = Entry(plugin, info, config or PluginConfig(), PluginState.LOADED, source,
                          middleware_type=mtype)
            self._entries[info.id] = entry
            self._by_type[info.type][info.id] = None
            if mtype is not None:
                self._by_middleware.setdefault(mtype, []).append(info.id)
            hooks = list(self._hooks)
        for hook in hooks:
            hook(info.id, PluginState.UNLOADED, PluginState.LOADED, None)
        return entry

    def unregister(self, plugin_id: str) -> Entry:
        with self._lock:
            entry = self._entry(plugin_id)
            del self._entries[plugin_id]
            self._by_type[entry.info.type].pop(plugin_id, None)
            if entry.middleware_type is not None:
                ids = self._by_middleware[entry.middleware_type]
                ids.remove(plugin_id)
                if not ids:
                    del self._by_middleware[entry.middleware_type]
            return entry

    def replace(self, plugin_id: str, entry: Entry) -> Entry:
        """Swap the entry for ``plugin_id`` atomically (hot reload); returns the old one."""
        with self._lock:
            old = self._entry(plugin_id)
            self._entries[plugin_id] = entry
            return old

    def _entry(self, plugin_id: str) -> Entry:
        try:
            return self._entries[plugin_id]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise PluginNotFoundError(f"unknown plugin {plugin_id!r} (registered: {known})") from None

    def entry(self, plugin_id: str) -> Entry:
        with self._lock:
            return self._entry(plugin_id)

    def get(self, plugin_id: str) -> Plugin:
        with self._lock:
            return self._entry(plugin_id).plugin

    def __contains__(self, plugin_id: object) -> bool:
        return plugin_id in self._entries

    def get_middleware_plugin(self, mtype: str) -> MiddlewarePlugin:
        with self._lock:
            ids = self._by_middleware.get(mtype)
            if not ids:
                known = ", ".join(sorted(self._by_middleware)) or "none"
                raise PluginNotFoundError(
                    f"no plugin for middleware type {mtype!r} (known types: {known})"
                )
            plugin = self._entries[ids[0]].plugin
        assert isinstance(plugin, MiddlewarePlugin)
        return plugin

    def middleware_plugin_id(self, mtype: str) -> str:
        with self._lock:
            ids = self._by_middleware.get(mtype)
            if not ids:
                self.get_middleware_plugin(mtype)  # raises the full error
            return ids[0]  # type: ignore[index]

    def middleware_types(self) -> list[str]:
        with self._lock:
            return sorted(self._by_middleware)

    def list_by_type(self, ptype: PluginType) -> list[PluginInfo]:
        with self._lock:
            return [self._entries[i].info for i in self._by_type[ptype]]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries.values())

    def get_state(self, plugin_id: str) -> PluginState:
        with self._lock:
            return self._entry(plugin_id).state

    def get_config(self, plugin_id: str) -> PluginConfig:
        with self._lock:
            return self._entry(plugin_id).config

    def set_config(self, plugin_id: str, config: PluginConfig) -> None:
        with self._lock:
            self._entry(plugin_id).config = config

    def set_state(self, plugin_id: str, state: PluginState, *,
                  error: PluginError | None = None) -> PluginState:
        """Move to ``state``; an illegal transition raises IllegalTransitionError."""
        with self._lock:
            entry = self._entry(plugin_id)
        return self.transition(entry, state, error=error)

    def transition(self, entry: Entry, state: PluginState, *,
                   error: PluginError | str | None = None) -> PluginState:
        """Move ``entry`` to ``state`` and fire the hooks. The entry may be one not (or no
        longer) registered under its id: a hot reload's new version before the swap, the
        replaced one when it is stopped."""
        with self._lock:
            old = entry.state
            check_transition(entry.info.id, old, state)
            entry.state = state
            entry.last_error = str(error) if error is not None else None
            hooks = list(self._hooks)
        for hook in hooks:
            hook(entry.info.id, old, state, error if isinstance(error, PluginError) else None)
        return old

    def __len__(self) -> int:
        return len(self._entries)
