"""Importing an external plugin's code, fresh each time.

Every load imports the plugin's modules under a unique package name
(``ksa_external.<id>_<n>``), so a reload gets fresh module objects and the old version
keeps running on its own modules until it is stopped. Code inside a plugin folder
imports its siblings relatively (``from .checks import ...``).

For an entry point the distribution's top-level package is aliased the same way; the
first load may simply use the installed module.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import re
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Plugin
from .errors import PluginError, PluginLoadError, Problem
from .manifest import Manifest, api_problem
from .models import PluginInfo

NAMESPACE = "ksa_external"
_counter = itertools.count(1)
_import_lock = threading.Lock()


@dataclass
class LoadedCode:
    """One imported version of a plugin: its factory, kept to make new instances
    (reload, rollback) without importing again."""

    factory: Callable[[], Plugin]
    module_name: str
    manifest: Manifest | None
    source: str
    location: str
    root: Path | None
    entry: str
    config_schema: dict[str, Any] | None = None
    modules: list[str] = field(default_factory=list)


def _namespace() -> types.ModuleType:
    ns = sys.modules.get(NAMESPACE)
    if ns is None:
        ns = types.ModuleType(NAMESPACE)
        ns.__path__ = []  # a package with no location: only our aliases live in it
        sys.modules[NAMESPACE] = ns
    return ns


def _alias_package(alias: str, locations: list[str], init_file: Path | None) -> None:
    """Create package ``alias`` whose submodules are searched in ``locations``."""
    if init_file is not None and init_file.is_file():
        spec = importlib.util.spec_from_file_location(alias, init_file,
                                                      submodule_search_locations=locations)
    else:
        spec = importlib.util.spec_from_loader(alias, loader=None, is_package=True)
        assert spec is not None
        spec.submodule_search_locations = locations
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(alias, None)
        raise


def unique_name(plugin_id: str) -> str:
    return f"{NAMESPACE}.{re.sub(r'[^A-Za-z0-9_]', '_', plugin_id)}_{next(_counter)}"


def import_entry(entry: str, root: Path | None, plugin_id: str) -> tuple[Any, str]:
    """Import ``module:attr`` fresh; returns (object, package alias).

    ``root``: the plugin folder the module is relative to; None for an entry point
    (the module's top-level package is located on sys.path and aliased)."""
    module_path, _, attr = entry.partition(":")
    alias = unique_name(plugin_id)
    with _import_lock:
        _namespace()
        # files replaced since the last import must be seen (finders cache directory listings)
        importlib.invalidate_caches()
        if root is not None:
            _alias_package(alias, [str(root)], None)
            full = f"{alias}.{module_path}"
        else:
            top, _, rest = module_path.partition(".")
            spec = importlib.util.find_spec(top)
            if spec is None:
                raise ModuleNotFoundError(f"No module named {top!r}", name=top)
            if spec.submodule_search_locations:
                origin = Path(spec.origin) if spec.origin else None
                _alias_package(alias, list(spec.submodule_search_locations), origin)
                full = f"{alias}.{rest}" if rest else alias
            else:  # a single-file top-level module
                assert spec.origin is not None
                mspec = importlib.util.spec_from_file_location(alias, spec.origin)
                assert mspec is not None and mspec.loader is not None
                mod = importlib.util.module_from_spec(mspec)
                sys.modules[alias] = mod
                mspec.loader.exec_module(mod)
                full = alias
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as e:
        forget(alias)
        name = e.name or ""
        if name == alias or name.startswith(alias + "."):
            name = name[len(alias) + 1:] or module_path
            raise ModuleNotFoundError(f"No module named {name!r}", name=name) from None
        raise
    except BaseException:
        forget(alias)
        raise
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj, alias


def forget(alias: str) -> None:
    """Drop an alias and its submodules from sys.modules (objects still referenced live on).
    Only our own aliases: a builtin's modules are never touched."""
    if not alias.startswith(NAMESPACE + "."):
        return
    for name in [n for n in sys.modules if n == alias or n.startswith(alias + ".")]:
        sys.modules.pop(name, None)


def as_factory(obj: Any, entry: str, location: str, plugin_id: str) -> Callable[[], Plugin]:
    """A class or a zero-argument factory; anything else is not a plugin."""
    if inspect.isclass(obj):
        if not issubclass(obj, Plugin):
            raise PluginLoadError(location, [Problem(
                location, "entry", f"{entry} is class {obj.__qualname__}, which is not a "
                "subclass of plugins.Plugin (or MiddlewarePlugin)")], plugin_id)
        if inspect.isabstract(obj):
            missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
            raise PluginLoadError(location, [Problem(
                location, "entry", f"{entry} is abstract: implement {missing}")], plugin_id)
        return obj
    if isinstance(obj, Plugin):
        raise PluginLoadError(location, [Problem(
            location, "entry", f"{entry} is a plugin instance; name its class or a factory "
            "so that reload and rollback can make new instances")], plugin_id)
    if callable(obj) and not isinstance(obj, type):
        return obj  # type: ignore[no-any-return]
    raise PluginLoadError(location, [Problem(
        location, "entry", f"{entry} is a {type(obj).__name__}, not a Plugin class or factory")],
        plugin_id)


def check_instance(obj: Any, entry: str, location: str, plugin_id: str) -> Plugin:
    if not isinstance(obj, Plugin):
        raise PluginLoadError(location, [Problem(
            location, "entry", f"{entry} returned a {type(obj).__name__}, not a Plugin")],
            plugin_id)
    return obj


def check_info(info: PluginInfo, manifest: Manifest | None, location: str) -> None:
    """The code must be the plugin its manifest describes, for our API."""
    problems: list[Problem] = []
    if manifest is not None:
        if info.id != manifest.id:
            problems.append(Problem(location, "id", f"the manifest says {manifest.id!r}, the "
                                    f"plugin's info() says {info.id!r}"))
        if info.version != manifest.version:
            problems.append(Problem(location, "version", f"the manifest says "
                                    f"{manifest.version}, the plugin's info() says {info.version}"))
        if info.type != manifest.type:
            problems.append(Problem(location, "type", f"the manifest says "
                                    f"{manifest.type.value}, info() says {info.type.value}"))
    why = api_problem(info.api_version)
    if why:
        problems.append(Problem(location, "api_version", f"info(): {why}"))
    if problems:
        raise PluginLoadError(location, problems, manifest.id if manifest else info.id)


def describe_import_error(e: BaseException, entry: str, location: str,
                          plugin_id: str) -> PluginError:
    if isinstance(e, PluginError):
        return e
    if isinstance(e, ModuleNotFoundError):
        what = f"module {e.name or entry.split(':')[0]!r} does not exist"
    elif isinstance(e, AttributeError):
        what = f"{entry}: no such object ({e})"
    else:
        what = f"importing {entry} raised {type(e).__name__}: {e}"
    return PluginLoadError(location, [Problem(location, "entry", what)], plugin_id)
