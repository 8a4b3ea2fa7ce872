"""Which middleware types have a plugin, and each plugin's effective config.

Built at app import (every process that imports ``workers``: worker, beat, Flower, the
``celery call`` client), so a task name is registered before any message arrives: a
message for a name the worker does not know is discarded by Celery.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from plugins import MiddlewarePlugin, PluginConfig, PluginError, builtin_ids, load_builtin

log = logging.getLogger(__name__)

WELL_KNOWN_TYPES: tuple[str, ...] = ("redis", "kafka", "mysql")
"""Task names registered even when no plugin for them is installed here: the task then
answers "no plugin" instead of Celery silently discarding the message."""


@dataclass(frozen=True)
class PluginSpec:
    plugin_id: str
    mtype: str
    config: PluginConfig

    @property
    def soft_limit(self) -> float:
        return self.config.timeouts.diagnose

    @property
    def hard_limit(self) -> float:
        return self.config.timeouts.diagnose + self.config.timeouts.grace

    @property
    def health_soft_limit(self) -> float:
        return self.config.timeouts.health_check

    @property
    def health_hard_limit(self) -> float:
        return self.config.timeouts.health_check + self.config.timeouts.grace


def merge_config(base: PluginConfig, stored: Mapping[str, Any] | None) -> PluginConfig:
    """The stored config (storage) over the plugin's own default, nested dicts merged."""
    if not stored:
        return base
    data = base.model_dump()
    for key, value in stored.items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return PluginConfig.model_validate(data)


def import_plugin_modules(modules: Iterable[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # one broken extra module must not stop the worker
            log.exception("plugin module %s failed to import", name)


def discover(modules: Iterable[str] = ()) -> dict[str, PluginSpec]:
    """Middleware type -> the plugin that serves it, from builtins and ``modules``."""
    import_plugin_modules(modules)
    specs: dict[str, PluginSpec] = {}
    for plugin_id in builtin_ids():
        try:
            plugin = load_builtin(plugin_id)
        except PluginError as e:
            log.error("plugin %s failed to load: %s", plugin_id, e)
            continue
        if not isinstance(plugin, MiddlewarePlugin):
            continue
        mtype = plugin.middleware_type()
        if mtype in specs:
            log.warning("middleware type %s: plugin %s ignored, %s serves it", mtype,
                        plugin_id, specs[mtype].plugin_id)
            continue
        specs[mtype] = PluginSpec(plugin_id, mtype, plugin.config)
    return specs


def task_types(specs: Mapping[str, PluginSpec]) -> list[str]:
    return sorted(set(specs) | set(WELL_KNOWN_TYPES))
