"""Loading external plugins into a PluginManager (mixed into it).

Each plugin is imported, instantiated and asked for its info() in the sandbox, under
``load_timeout``; then the set is ordered by ``requires`` and registered dependencies
first. A broken plugin is reported (naming the plugin and its file) and skipped; the
others still load and serve.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .deps import DependencyError, Node, check_requirement, resolve
from .discovery import (
    Discovered,
    DiscoveryReport,
    discover_all,
    plugin_dirs,
    read_plugin_dir,
)
from .errors import DuplicatePluginError, PluginError
from .external import (
    LoadedCode,
    as_factory,
    check_info,
    check_instance,
    describe_import_error,
    forget,
    import_entry,
)
from .manifest import MANIFEST_NAMES, ManifestError, Problem
from .models import PluginConfig, PluginInfo

if TYPE_CHECKING:
    from .base import Plugin
    from .registry import Entry, Registry
    from .sandbox import Sandbox

log = logging.getLogger(__name__)


def discovered_from_path(path: str | Path) -> Discovered:
    """A plugin folder (holding manifest.yaml or plugin.yaml) or a manifest file."""
    p = Path(path).absolute()
    if p.is_dir():
        for name in MANIFEST_NAMES:
            if (p / name).is_file():
                return read_plugin_dir(p / name, p)
        raise ManifestError(p, [Problem(str(p), "", "no manifest.yaml or plugin.yaml in this "
                                        "folder")])
    return read_plugin_dir(p, p.parent)


class ExternalLoader:
    """Mixin for :class:`PluginManager`: external plugins from directories and entry points."""

    registry: Registry
    sandbox: Sandbox
    load_timeout: float = 10.0
    """Seconds to import a plugin, build it and read its info()."""

    def register(self, plugin: Plugin, config: PluginConfig | None = None, *,
                 source: str = "builtin") -> Entry:
        raise NotImplementedError  # provided by PluginManager

    def discover(self, dirs: Iterable[str | Path] | None = None, *,
                 entry_points: bool = True,
                 env: Mapping[str, str] | None = None) -> DiscoveryReport:
        """Manifests in ``dirs`` (default: :func:`plugin_dirs`) and entry points."""
        return discover_all(plugin_dirs(env=env) if dirs is None else dirs, entry_points)

    def load_code(self, item: Discovered) -> tuple[LoadedCode, Plugin, PluginInfo]:
        """Import ``item``'s code fresh, build an instance and check its info()."""
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
                raise ManifestError(item.location, [Problem(
                    item.location, "entry", f"building {item.entry} raised "
                    f"{type(e).__name__}: {e}")], pid) from e
            if not isinstance(info, PluginInfo):
                forget(alias)
                raise ManifestError(item.location, [Problem(
                    item.location, "entry", f"info() returned {type(info).__name__}, "
                    "not PluginInfo")], pid)
            return factory, alias, plugin, info

        out = self.sandbox.run(pid, "load", build, self.load_timeout)
        if out.error is not None:
            err = out.error
            if not isinstance(err, ManifestError):
                err = ManifestError(item.location, [Problem(item.location, "entry", str(err))],
                                    pid)
            raise err
        assert out.value is not None
        factory, alias, plugin, info = out.value
        try:
            check_info(info, manifest, item.location)
            if item.source == "entry-point" and info.id != item.name:
                raise ManifestError(item.location, [Problem(
                    item.location, "id", f"the entry point is named {item.name!r}, the "
                    f"plugin's info() says {info.id!r}")], item.name)
        except PluginError:
            forget(alias)
            raise
        code = LoadedCode(factory, alias, manifest, item.source, item.location, item.root,
                          item.entry, manifest.config_schema if manifest else None)
        return code, plugin, info

    def register_external(self, code: LoadedCode, plugin: Plugin, info: PluginInfo,
                          config: PluginConfig | None = None) -> Entry:
        try:
            entry = self.register(plugin, config, source=code.source)
        except DuplicatePluginError as e:
            forget(code.module_name)
            raise DuplicatePluginError(f"{e} ({code.location})") from None
        entry.extra.update(external_extra(code))
        return entry

    def load_external(self, dirs: Iterable[str | Path] | None = None, *,
                      entry_points: bool = True,
                      configs: Mapping[str, PluginConfig] | None = None,
                      env: Mapping[str, str] | None = None) -> list[PluginError]:
        """Discover, import, order by ``requires`` and register every external plugin.

        Returns the errors (invalid manifests, import failures, unmet dependencies,
        duplicate ids); every plugin without one is registered (state Loaded)."""
        report = self.discover(dirs, entry_points=entry_points, env=env)
        return report.invalid + self.load_discovered(report.found, configs)

    def load_path(self, path: str | Path, config: PluginConfig | None = None) -> Entry:
        """One plugin from a folder or a manifest file (the seed's LoadExternal)."""
        item = discovered_from_path(path)
        errors = self.load_discovered([item], {item.name: config} if config else None)
        if errors:
            raise errors[0]
        return self.registry.entry(item.name)

    def load_discovered(self, items: Iterable[Discovered],
                        configs: Mapping[str, PluginConfig] | None = None) -> list[PluginError]:
        configs = configs or {}
        errors: list[PluginError] = []
        loaded: dict[str, tuple[LoadedCode, Plugin, PluginInfo]] = {}
        for item in items:
            try:
                code, plugin, info = self.load_code(item)
            except PluginError as e:
                log.error("external plugin %s not loaded: %s", item.name, e)
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
                self.register_external(code, plugin, info,
                                       configs.get(info.id))
            except PluginError as e:
                log.error("external plugin %s not loaded: %s", info.id, e)
                errors.append(e)
        return errors

    def _load_required_builtins(self, nodes: list[Node]) -> None:
        """A builtin that an external plugin requires is loaded first, if it is not yet."""
        from packaging.requirements import Requirement

        from . import loader

        wanted = {Requirement(r).name for n in nodes for r in n.requires}
        for pid in sorted(wanted & set(loader.builtin_ids())):
            if pid not in self.registry:
                try:
                    self.register(loader.load_builtin(pid), source="builtin")
                except PluginError as e:  # reported through the dependent's error
                    log.error("builtin %s required by an external plugin: %s", pid, e)

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
    return {"code": code, "location": code.location,
            "manifest": code.manifest.model_dump(mode="json") if code.manifest else None,
            "config_schema": code.config_schema}
