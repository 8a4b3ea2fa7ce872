"""The plugins page (``/plugins``, ``/api/plugins``): every plugin known here, how many of
the fleet's targets use it, where it runs and each isolation layer, active or why not
(what ``ksa plugin info ID`` prints: ``plugins.isolation.describe``).

Builtins come from their catalogue and external plugins from their manifests (plugin
directories, entry points): no plugin code is imported in the web process. The layers
are probed on the machine that serves the page, once per process; a worker on another
machine may have others (``ksa plugin info ID`` there says).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from kubestack_ai.plugins.catalogue import BUILTINS
from kubestack_ai.plugins.discovery import discover_all, plugin_dirs
from kubestack_ai.plugins.isolation import describe
from kubestack_ai.plugins.models import PluginConfig
from kubestack_ai.storage import Store


def plugins(store: Store) -> dict[str, Any]:
    used = store.plugin_targets()
    stored = {r.plugin_id: r for r in store.list_plugin_states()}
    rows: list[dict[str, Any]] = []
    for pid, b in BUILTINS.items():
        info = b["info"]
        rows.append(_row(pid, info["name"], info["version"], "builtin", "-",
                         b["middleware_type"], True, used, stored))
    report = discover_all(plugin_dirs(), entry_points=True)
    for item in report.found:
        if item.name in BUILTINS:
            continue  # refused where it would load: a builtin has that id
        man = item.manifest
        rows.append(_row(item.name, man.name if man else item.name,
                         man.version if man else "-", item.source, item.location, None,
                         False, used, stored))
    known = {r["id"] for r in rows}
    for pid in sorted(set(used) - known):  # run by a worker elsewhere: not found here
        rows.append({"id": pid, "name": pid, "version": "-", "source": "not found here",
                     "location": "-", "middleware_type": None, "targets": used[pid],
                     "enabled": stored[pid].enabled if pid in stored else True,
                     "generation": stored[pid].generation if pid in stored else 0,
                     "limits": None, "isolation": None})
    return {"plugins": rows, "invalid": [str(e) for e in report.invalid]}


def _row(pid: str, name: str, version: str, source: str, location: str,
         middleware_type: str | None, builtin: bool, used: dict[str, int],
         stored: dict[str, Any]) -> dict[str, Any]:
    rec = stored.get(pid)
    out: dict[str, Any] = {
        "id": pid, "name": name, "version": version, "source": source, "location": location,
        "middleware_type": middleware_type, "targets": used.get(pid, 0),
        "enabled": rec.enabled if rec is not None else True,
        "generation": rec.generation if rec is not None else 0}
    try:  # the stored config, as every worker applies it (ksa plugin info reads it so too)
        config = PluginConfig.model_validate((rec.config if rec is not None else None) or {})
    except ValidationError as e:
        out.update(limits=None, isolation={
            "mode": "refused",
            "refused": f"stored config invalid: {e.error_count()} errors (workers refuse "
                       "to run it)"})
        return out
    out["limits"] = {"memory_limit_mb": config.memory_limit_mb,
                     "cpu_limit_pct": config.cpu_limit_pct, "pids_max": config.pids_max}
    out["isolation"] = describe(pid, config, builtin)
    return out
