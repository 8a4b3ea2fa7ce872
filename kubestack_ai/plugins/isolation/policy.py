"""Whether a plugin runs in a plugin host or in the worker, and where its code is.

External plugins (plugin folders, entry points) run in a plugin host by default;
builtins in the worker. A plugin's config says otherwise with ``isolation``:
``process`` isolates any plugin; ``none`` for an external plugin is refused unless the
operator names it in ``KSA_ISOLATION_ALLOW_NONE`` (comma-separated ids, ``*`` for all).
With ``KSA_ISOLATION=strict`` an isolated plugin is refused when a layer is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..discovery import discover_all, plugin_dirs
from ..errors import PluginError
from ..models import PluginConfig
from . import layers

ALLOW_NONE_ENV = "KSA_ISOLATION_ALLOW_NONE"


class IsolationRefused(PluginError):
    """The plugin may not run as configured on this machine; the message says which rule
    and how to allow it."""


@dataclass(frozen=True)
class PluginRef:
    """Where the host finds the plugin's code: ``builtin`` (by id), ``path`` (a folder or
    manifest), ``entry`` (an installed entry point, by id)."""

    plugin_id: str
    kind: str
    path: str | None = None
    root: str | None = None
    """The plugin's own folder (the only plugin folder its host sees)."""


def isolated(plugin_id: str, config: PluginConfig, builtin: bool,
             environ: Mapping[str, str] | None = None) -> bool:
    """True: run in a plugin host. Raises IsolationRefused for a refused combination."""
    env = os.environ if environ is None else environ
    mode = config.isolation or ("none" if builtin else "process")
    if mode == "none" and not builtin:
        allowed = {s.strip() for s in env.get(ALLOW_NONE_ENV, "").split(",") if s.strip()}
        if plugin_id not in allowed and "*" not in allowed:
            raise IsolationRefused(
                f"plugin {plugin_id!r}: isolation: none refused for an external plugin "
                f"(rule: external plugin code runs in a plugin host); allow it with "
                f"{ALLOW_NONE_ENV}={plugin_id}")
        return False
    if mode == "process" and layers.strict(env):
        gaps = layers.missing()
        if gaps:
            raise IsolationRefused(
                f"plugin {plugin_id!r}: {layers.STRICT_ENV}=strict and this machine lacks "
                + "; ".join(f"{g.name} ({g.detail})" for g in gaps)
                + f"; unset {layers.STRICT_ENV} to run with the layers there are")
    if mode == "process":
        layers.log_missing_once()
    return mode == "process"


def locate(plugin_id: str, builtin: bool, source: str | None = None) -> PluginRef:
    """Where ``plugin_id``'s code is, from manifests only (no plugin code runs here)."""
    if builtin and source is None:
        return PluginRef(plugin_id, "builtin")
    if source is not None:
        from ..discovery import discover_path

        item = discover_path(source)
        return PluginRef(plugin_id, "path", item.location, str(item.root) if item.root else None)
    report = discover_all(plugin_dirs(), entry_points=True)
    for item in report.found:
        if item.name != plugin_id:
            continue
        if item.source == "directory":
            return PluginRef(plugin_id, "path", item.location,
                             str(item.root) if item.root else None)
        return PluginRef(plugin_id, "entry")
    raise PluginError(f"plugin {plugin_id!r} not found in the plugin directories nor the "
                      "entry points")


def describe(plugin_id: str, config: PluginConfig, builtin: bool,
             environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """What ``ksa plugin info`` and the web view show: where the plugin runs, and each
    layer on this machine (active, or why not)."""
    try:
        mode = "plugin host" if isolated(plugin_id, config, builtin, environ) else "in the worker"
        refusal = None
    except IsolationRefused as e:
        mode, refusal = "refused", str(e)
    out: dict[str, object] = {"mode": mode}
    if refusal:
        out["refused"] = refusal
    if mode != "in the worker":
        out["layers"] = {layer.name: ("active: " if layer.active else "missing: ") + layer.detail
                         for layer in layers.probe()}
        out["strict"] = layers.strict(environ)
    return out


def ref_of(entry: Any) -> PluginRef:
    """Where a registered plugin's code came from (a registry Entry), for its host."""
    pid = entry.info.id
    code = entry.extra.get("code")
    if entry.source == "builtin" or code is None:
        return PluginRef(pid, "builtin")
    if code.source == "directory":
        return PluginRef(pid, "path", code.location, str(code.root) if code.root else None)
    return PluginRef(pid, "entry")
