"""The builtin factory registry (seed sections 3.4 and 8.1).

A builtin plugin's package calls :func:`register_builtin` when it is imported; the
packages are imported on first use. The middleware client library is imported on
connect, so listing a plugin costs no driver import. External plugins come through
:mod:`.loader`, which also puts builtins into a registry."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

from .base import Plugin
from .errors import DuplicatePluginError, PluginCallError, PluginError, PluginNotFoundError
from .logcontext import get_logger

log = get_logger(__name__)

Factory = Callable[[], Plugin]

BUILTIN_MODULES: dict[str, str] = {
    "tcp-diagnostics": "kubestack_ai.plugins.tcp",
    "redis-diagnostics": "kubestack_ai.plugins.redis",
    "mysql-diagnostics": "kubestack_ai.plugins.mysql",
    "kafka-diagnostics": "kubestack_ai.plugins.kafka",
    "postgres-diagnostics": "kubestack_ai.plugins.postgres",
}
"""Plugin id -> the package whose import registers it. One line per builtin."""

_factories: dict[str, Factory] = {}
_lock = threading.Lock()
_imported = False


def register_builtin(plugin_id: str, factory: Factory) -> None:
    with _lock:
        existing = _factories.get(plugin_id)
        if existing is not None and existing is not factory:
            raise DuplicatePluginError(f"builtin plugin id {plugin_id!r} is registered twice")
        _factories[plugin_id] = factory


def _import_builtins() -> None:
    global _imported
    if _imported:
        return
    for name in BUILTIN_MODULES.values():
        importlib.import_module(name)
    _imported = True


def _import_builtin(plugin_id: str) -> None:
    """Only the package of ``plugin_id`` when it is one of ours (``ksa diagnose redis``
    imports no other builtin's code); every builtin package for any other id."""
    if plugin_id in _factories:
        return
    module = BUILTIN_MODULES.get(plugin_id)
    if module is not None:
        importlib.import_module(module)
    if plugin_id not in _factories:
        _import_builtins()


def builtin_ids() -> list[str]:
    _import_builtins()
    return sorted(_factories)


def factory(plugin_id: str) -> Factory | None:
    """The registered factory of ``plugin_id`` (None when it is not a builtin)."""
    _import_builtin(plugin_id)
    return _factories.get(plugin_id)


def load_builtin(plugin_id: str) -> Plugin:
    """A new instance of the builtin plugin ``plugin_id`` (not yet registered)."""
    _import_builtin(plugin_id)
    try:
        factory = _factories[plugin_id]
    except KeyError:
        raise PluginNotFoundError(
            f"unknown builtin plugin {plugin_id!r} (builtins: {', '.join(sorted(_factories))})"
        ) from None
    try:
        plugin = factory()
    except PluginError:
        raise
    except Exception as e:  # a factory is plugin code
        raise PluginCallError(plugin_id, "load", f"{type(e).__name__}: {e}") from e
    return plugin
