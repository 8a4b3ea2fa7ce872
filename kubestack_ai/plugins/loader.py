"""The loader (seed section 3.4): plugins into the registry, from builtin factories
(:mod:`.builtins`) and from external code (plugin folders and entry points).

    discover (manifests, entry points: no plugin code runs)          discovery.py
      -> import fresh, build an instance, read its info()            importer.py, in the sandbox
      -> order by ``requires``: dependencies first                   deps.py
      -> register (state Loaded)                                     registry.py

Every instance's info() runs in the sandbox (it is plugin code). A broken plugin is
reported (naming the plugin and its file) and skipped; the others still load and serve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import builtins
from .deps import Node, check_requirement, resolve
from .discovery import Discovered, discover_all, discover_path, plugin_dirs
from .errors import (
    DependencyError,
    DuplicatePluginError,
    InvalidPluginError,
    PluginCallError,
    PluginError,
    PluginLoadError,
    Problem,
)
from .importer import (
    LoadedCode,
    as_factory,
    check_info,
    check_instance,
    describe_import_error,
    forget,
    import_entry,
)
from .logcontext import get_logger, log_context
from .models import PluginConfig, PluginInfo

if TYPE_CHECKING:
    from .base import Plugin
    from .registry import Entry, Registry
    from .sandbox import Sandbox

log = get_logger(__name__)


def import_plugin(item: Discovered, sandbox: Sandbox,
                  timeout: float) -> tuple[LoadedCode, Plugin, PluginInfo]:
    """Import ``item``'s code fresh, build an instance and check its info(), in the
    sandbox under ``timeout``. Registers nothing (``ksa plugin validate`` uses it too)."""
    pid = item.name
    manifest = item.manifest

    def build(_d: object) -> tuple[Any, str, Plugin, PluginInfo]:
        try:
            obj, alias = import_entry(item.entry, item.root, pid)
        except Exception as e:  # plugin code: anything can be raised on import
            raise describe_import_error(e, item.entry, item.location, pid) from e
        try:
            factory = as_factory(obj, item.entry, item.location, pid)
            plugin = check_instance(factory(), item.entry, item.location, pid)
            info = plugin.info()
        except PluginError:
            forget(alias)
            raise
        except Exception as e:  # the factory or info() is plugin code
            forget(alias)
            raise PluginLoadError(item.location, [Problem(
                item.location, "entry", f"building {item.entry} raised "
                f"{type(e).__name__}: {e}")], pid) from e
        if not isinstance(info, PluginInfo):
            forget(alias)
            raise PluginLoadError(item.location, [Problem(
                item.location, "entry", f"info() returned {type(info).__name__}, "
                "not PluginInfo")], pid)
        return factory, alias, plugin, info

    out = sandbox.run(pid, "load", build, timeout)
    if out.error is not None:
        err = out.error
        if not isinstance(err, InvalidPluginError):
            err = PluginLoadError(item.location, [Problem(item.location, "entry", str(err))],
                                pid)
        raise err
    assert out.value is not None
    factory, alias, plugin, info = out.value
    try:
        check_info(info, manifest, item.location)
        if item.source == "entry-point" and info.id != item.name:
            raise PluginLoadError(item.location, [Problem(
                item.location, "id", f"the entry point is named {item.name!r}, the "
                f"plugin's info() says {info.id!r}")], item.name)
    except PluginError:
        forget(alias)
        raise
    code = LoadedCode(factory, alias, manifest, item.source, item.location, item.root,
                      item.entry, manifest.config_schema if manifest else None)
    return code, plugin, info


class Loader:
    """Puts plugin instances into ``registry``: builtins by id, external plugins from
    directories, entry points or one path."""

    def __init__(self, registry: Registry, sandbox: Sandbox, *, info_timeout: float = 5.0,
                 load_timeout: float = 10.0) -> None:
        self.registry = registry
        self.sandbox = sandbox
        self.info_timeout = info_timeout
        """Seconds for a registered instance's info()."""
        self.load_timeout = load_timeout
        """Seconds to import an external plugin, build it and read its info()."""

    def register(self, plugin: Plugin, config: PluginConfig | None = None, *,
                 source: str = "builtin") -> Entry:
        """Register an instance; its info() runs in the sandbox (it is plugin code)."""
        out = self.sandbox.run(type(plugin).__name__, "info", lambda d: plugin.info(),
                               self.info_timeout)
        info = out.unwrap()
        if not isinstance(info, PluginInfo):
            raise PluginCallError(type(plugin).__name__, "info",
                                  f"returned {type(info).__name__}, not PluginInfo")
        return self.registry.register(plugin, config, source=source, info=info)

    # -- builtins ---------------------------------------------------------------------

    def load_builtin(self, plugin_id: str, config: PluginConfig | None = None) -> Entry:
        return self.register(builtins.load_builtin(plugin_id), config, source="builtin")

    def load_builtins(self, configs: Mapping[str, PluginConfig] | None = None) -> list[PluginError]:
        """Every builtin not yet registered; returns the errors (the others still load)."""
        errors: list[PluginError] = []
        for plugin_id in builtins.builtin_ids():
            if plugin_id in self.registry:
                continue
            with log_context(plugin_id=plugin_id):
                try:
                    self.load_builtin(plugin_id, (configs or {}).get(plugin_id))
                except PluginError as e:
                    log.error("load %s failed: %s", plugin_id, e)
                    errors.append(e)
        return errors

    # -- external plugins -------------------------------------------------------------

    def load_external(self, dirs: Iterable[str | Path] | None = None, *,
                      entry_points: bool = True,
                      configs: Mapping[str, PluginConfig] | None = None,
                      env: Mapping[str, str] | None = None) -> list[PluginError]:
        """Discover (``dirs`` default: :func:`.discovery.plugin_dirs`), import, order by
        ``requires`` and register every external plugin.

        Returns the errors (invalid manifests, import failures, unmet dependencies,
        duplicate ids); every plugin without one is registered (state Loaded)."""
        report = discover_all(plugin_dirs(env=env) if dirs is None else dirs, entry_points)
        return report.invalid + self.load_discovered(report.found, configs)

    def load_path(self, path: str | Path, config: PluginConfig | None = None) -> Entry:
        """One plugin from a folder or a manifest file (the seed's LoadExternal)."""
        item = discover_path(path)
        errors = self.load_discovered([item], {item.name: config} if config else None)
        if errors:
            raise errors[0]
        return self.registry.entry(item.name)

    def load_code(self, item: Discovered) -> tuple[LoadedCode, Plugin, PluginInfo]:
        return import_plugin(item, self.sandbox, self.load_timeout)

    def load_discovered(self, items: Iterable[Discovered],
                        configs: Mapping[str, PluginConfig] | None = None) -> list[PluginError]:
        configs = configs or {}
        errors: list[PluginError] = []
        loaded: dict[str, tuple[LoadedCode, Plugin, PluginInfo]] = {}
        for item in items:
            try:
                code, plugin, info = self._load_logged(item)
            except PluginError as e:
                errors.append(e)
                continue
            if info.id in loaded or info.id in self.registry:
                where = (loaded[info.id][0].location if info.id in loaded
                         else self.registry.entry(info.id).source)
                errors.append(DuplicatePluginError(
                    f"plugin id {info.id!r} ({item.location}) is already provided by {where}; "
                    "refused the second"))
                forget(code.module_name)
                continue
            loaded[info.id] = (code, plugin, info)
        nodes = [Node(pid, info.version, code.manifest.requires if code.manifest else (),
                      code.location) for pid, (code, _, info) in loaded.items()]
        self._load_required_builtins(nodes)
        order, refused = resolve(nodes, self.versions())
        for pid, err in refused.items():
            log.error("external plugin %s not loaded: %s", pid, err)
            errors.append(err)
            forget(loaded[pid][0].module_name)
        for node in order:
            code, plugin, info = loaded[node.plugin_id]
            try:
                self.check_requires(node)
                self._register_external(code, plugin, configs.get(info.id))
            except PluginError as e:
                log.error("external plugin %s not loaded: %s", info.id, e)
                errors.append(e)
        return errors

    def _load_logged(self, item: Discovered) -> tuple[LoadedCode, Plugin, PluginInfo]:
        with log_context(plugin_id=item.name):
            try:
                return self.load_code(item)
            except PluginError as e:
                log.error("external plugin %s not loaded: %s", item.name, e)
                raise

    def _register_external(self, code: LoadedCode, plugin: Plugin,
                           config: PluginConfig | None) -> Entry:
        try:
            entry = self.register(plugin, config, source=code.source)
        except DuplicatePluginError as e:
            forget(code.module_name)
            raise DuplicatePluginError(f"{e} ({code.location})") from None
        entry.extra.update(external_extra(code))
        return entry

    def _load_required_builtins(self, nodes: list[Node]) -> None:
        """A builtin that an external plugin requires is loaded first, if it is not yet."""
        if not any(n.requires for n in nodes):
            return  # nothing to parse (packaging's parser is costly to import)
        from packaging.requirements import Requirement

        wanted = {Requirement(r).name for n in nodes for r in n.requires}
        for pid in sorted(wanted & set(builtins.builtin_ids())):
            if pid not in self.registry:
                try:
                    self.load_builtin(pid)
                except PluginError as e:  # reported through the dependent's error
                    log.error("builtin %s required by an external plugin: %s", pid, e)

    # -- dependencies -----------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        return {e.info.id: e.info.version for e in self.registry.entries()}

    def check_requires(self, node: Node) -> None:
        """Against what is registered now (a dependency may have failed to register)."""
        from packaging.requirements import Requirement

        have = self.versions()
        for raw in node.requires:
            check_requirement(node, Requirement(raw), have)

    def dependents_problem(self, plugin_id: str, new_version: str) -> DependencyError | None:
        """A registered plugin whose ``requires`` the new version would break."""
        from packaging.requirements import Requirement

        for e in self.registry.entries():
            code = e.extra.get("code")
            if not isinstance(code, LoadedCode) or code.manifest is None:
                continue
            for raw in code.manifest.requires:
                req = Requirement(raw)
                if req.name == plugin_id and str(req.specifier) and not req.specifier.contains(
                        new_version, prereleases=True):
                    return DependencyError(plugin_id, code.location,
                                           f"version {new_version} would break {e.info.id}, "
                                           f"which requires {raw}")
        return None


def external_extra(code: LoadedCode) -> dict[str, object]:
    """What a registry entry keeps of an external plugin's code (for reload, ``ksa plugin info``)."""
    return {"code": code, "location": code.location,
            "manifest": code.manifest.model_dump(mode="json") if code.manifest else None,
            "config_schema": code.config_schema}
