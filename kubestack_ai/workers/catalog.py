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
    items = _external(environ)  # manifests only, read once
    described = _describe_isolated(items, environ)
    for d in described:
        if d["middleware_type"] is not None:
            _add(specs, PluginSpec(d["id"], d["middleware_type"],
                                   PluginConfig.model_validate(d["config"]),
                                   tuple(d["categories"])))
    if not _all_isolated(items, environ):
        # plugins the operator let run in the worker (isolation: none) are imported here
        manager = PluginManager()
        for err in manager.load_external(plugin_dirs(env=environ), env=environ):
            log.error("external plugin: %s", err)
        seen = {d["id"] for d in described}
        for entry in manager.registry.entries():
            if entry.middleware_type is not None and entry.info.id not in seen:
                cats = (entry.plugin.categories() if isinstance(entry.plugin, MiddlewarePlugin)
                        else ())
                _add(specs, PluginSpec(entry.info.id, entry.middleware_type, entry.config, cats))
    return specs


def _external(environ: Mapping[str, str] | None) -> list[Any]:
    from kubestack_ai.plugins.discovery import discover_all  # noqa: PLC0415

    return list(discover_all(plugin_dirs(env=environ), entry_points=True).found)


def _all_isolated(items: list[Any], environ: Mapping[str, str] | None) -> bool:
    from kubestack_ai.plugins.isolation import IsolationRefused, isolated  # noqa: PLC0415

    for item in items:
        try:
            if not isolated(item.name, PluginConfig(), False, environ):
                return False
        except IsolationRefused:
            continue
    return True


def _describe_isolated(items: list[Any],
                       environ: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """External plugins that run in a plugin host are described by one (their middleware
    type, categories, config): no external code is imported in this process."""
    from kubestack_ai.plugins.isolation import (  # noqa: PLC0415
        HostFailure,
        IsolationRefused,
        PluginHost,
        PluginRef,
        isolated,
    )
    from kubestack_ai.plugins.isolation.forks import zygote  # noqa: PLC0415

    out: list[dict[str, Any]] = []
    try:
        for item in items:
            try:
                if not isolated(item.name, PluginConfig(), False, environ):
                    continue
            except IsolationRefused as e:
                log.error("external plugin: %s", e)
                continue
            ref = (PluginRef(item.name, "path", item.location,
                             str(item.root) if item.root else None)
                   if item.source == "directory" else PluginRef(item.name, "entry"))
            host = PluginHost(ref, PluginConfig(), None)
            try:
                host.start()
                got = host.describe()
            except (HostFailure, PluginError, OSError) as e:
                log.error("external plugin %s: %s", item.name, e)
                continue
            finally:
                host.kill()
            out += [d for d in got if d["id"] not in {o["id"] for o in out}]
    finally:
        if items:
            zygote().close()  # each worker child starts its own
    return out


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
