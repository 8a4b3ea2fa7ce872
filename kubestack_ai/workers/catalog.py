"""Which middleware types have a plugin, and each plugin's effective config.

Built at app import (every process that imports ``workers``: worker, beat, Flower, the
``celery call`` client), so a task name is registered before any message arrives: a
message for a name the worker does not know is discarded by Celery.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubestack_ai.plugins import (
    MiddlewarePlugin,
    PluginConfig,
    PluginError,
    PluginManager,
    builtin_ids,
    load_builtin,
    plugin_dirs,
)
from kubestack_ai.plugins.logcontext import get_logger

log = get_logger(__name__)

WELL_KNOWN_TYPES: tuple[str, ...] = ("redis", "kafka", "mysql", "postgres")
"""Task names registered even when no plugin for them is installed here: the task then
answers "no plugin" instead of Celery silently discarding the message."""


@dataclass(frozen=True)
class PluginSpec:
    plugin_id: str
    mtype: str
    config: PluginConfig
    categories: tuple[str, ...] = ()
    """The plugin's diagnostic categories (empty: not known here)."""

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

    @property
    def action_soft_limit(self) -> float:
        """Connect, then execute: each under its own timeout, the task under both."""
        return self.config.timeouts.connect + self.config.timeouts.execute

    @property
    def action_hard_limit(self) -> float:
        return self.action_soft_limit + self.config.timeouts.grace


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


def discover(modules: Iterable[str] = (),
             environ: Mapping[str, str] | None = None) -> dict[str, PluginSpec]:
    """Middleware type -> the plugin that serves it: builtins, ``modules`` (imported to
    register more builtins), then external plugins (KSA_PLUGIN_PATH folders and entry
    points). Nothing is started; external code is imported, as ``ksa plugin list`` does."""
    import_plugin_modules(modules)
    specs: dict[str, PluginSpec] = {}
    for plugin_id in builtin_ids():
        try:
            plugin = load_builtin(plugin_id)
        except PluginError as e:
            log.error("plugin %s failed to load: %s", plugin_id, e)
            continue
        if isinstance(plugin, MiddlewarePlugin):
            _add(specs, PluginSpec(plugin_id, plugin.middleware_type(), plugin.config,
                                   plugin.categories()))
    manager = PluginManager()
    for err in manager.load_external(plugin_dirs(env=environ), env=environ):
        log.error("external plugin: %s", err)
    for entry in manager.registry.entries():
        if entry.middleware_type is not None:
            cats = (entry.plugin.categories() if isinstance(entry.plugin, MiddlewarePlugin)
                    else ())
            _add(specs, PluginSpec(entry.info.id, entry.middleware_type, entry.config, cats))
    return specs


def is_builtin(plugin_id: str) -> bool:
    return plugin_id in builtin_ids()


def _add(specs: dict[str, PluginSpec], spec: PluginSpec) -> None:
    if spec.mtype in specs:
        log.warning("middleware type %s: plugin %s ignored, %s serves it", spec.mtype,
                    spec.plugin_id, specs[spec.mtype].plugin_id)
        return
    specs[spec.mtype] = spec


def task_types(specs: Mapping[str, PluginSpec]) -> list[str]:
    return sorted(set(specs) | set(WELL_KNOWN_TYPES))
