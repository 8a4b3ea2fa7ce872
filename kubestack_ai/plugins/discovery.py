"""Finding external plugins (seed sections 3.5 and 8.2).

Two ways to ship one:

- a plugin directory (``/etc/kubestack-ai/plugins/`` by default, plus the directories in
  ``KSA_PLUGIN_PATH`` and any configured)::

      plugins/
      ├── my-plugin.yaml          # manifest beside its code: entry: my_plugin:MyPlugin
      ├── my_plugin.py
      └── another-plugin/
          ├── manifest.yaml       # or plugin.yaml; entry: plugin:AnotherPlugin
          └── plugin.py

- an installed distribution declaring an entry point in the group ``kubestack_ai.plugins``
  (``plugin-id = package.module:PluginClass``), optionally with a ``manifest.yaml`` or
  ``plugin.yaml`` beside that module (for ``requires`` and ``config_schema``).

Discovery reads manifests only; no plugin code runs here. An invalid manifest is
reported (file, field, what is wrong) and skipped, never stopping the rest; so is a
plugin that others could change (a writable folder or file, one owned by another user, a
link out of its folder: :mod:`.trust`), and every plugin of a plugins directory others
can write.

:func:`any_external` answers "might there be any?" from file names alone, without
pydantic, PyYAML or ``importlib.metadata`` (``ksa plugin list`` start-up): the manifest
reader and the entry-point machinery are imported when a plugin is actually found.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import trust
from .errors import (
    DuplicatePluginError,
    InvalidPluginError,
    ManifestError,
    PluginError,
    Problem,
    UnsafePluginError,
)
from .logcontext import get_logger

if TYPE_CHECKING:
    from .manifest import Manifest

log = get_logger(__name__)

DEFAULT_PLUGIN_DIR = Path("/etc/kubestack-ai/plugins")
PLUGIN_PATH_ENV = "KSA_PLUGIN_PATH"
ENTRY_POINT_GROUP = "kubestack_ai.plugins"
MANIFEST_SUFFIXES = (".yaml", ".yml")
MANIFEST_NAMES = ("manifest.yaml", "plugin.yaml")
"""The names of a plugin folder's manifest, in the order they are looked for."""


@dataclass(frozen=True)
class Discovered:
    """A plugin found but not loaded: its manifest and where its code lives."""

    manifest: Manifest | None
    """None for an entry point without a manifest: its info() says who it is."""
    source: str
    """``directory`` or ``entry-point``."""
    location: str
    """The manifest file, or ``dist==version: module:attr`` for an entry point."""
    root: Path | None = None
    """The folder the entry module is relative to (directory plugins)."""
    entry: str = ""
    """``module:attr``."""
    name: str = ""
    """The manifest's id, or the entry point's name."""


@dataclass
class DiscoveryReport:
    found: list[Discovered] = field(default_factory=list)
    invalid: list[PluginError] = field(default_factory=list)

    def extend(self, other: DiscoveryReport) -> None:
        self.found.extend(other.found)
        self.invalid.extend(other.invalid)


def plugin_dirs(configured: Iterable[str | Path] = (),
                env: Mapping[str, str] | None = None,
                include_default: bool = True) -> list[Path]:
    """The directories to search, in order: the default, ``KSA_PLUGIN_PATH``
    (``os.pathsep``-separated), then ``configured``. Duplicates are dropped."""
    env = os.environ if env is None else env
    dirs: list[Path] = [DEFAULT_PLUGIN_DIR] if include_default else []
    dirs += [Path(p) for p in env.get(PLUGIN_PATH_ENV, "").split(os.pathsep) if p]
    dirs += [Path(p) for p in configured]
    installed = Path(env.get("KSA_HOME") or Path.home() / ".ksa", "plugins", ".current")
    if include_default and installed.is_dir():
        dirs.append(installed)  # plugins installed from an index (plugins/index/installed.py)
    seen: set[Path] = set()
    out = []
    for d in dirs:
        key = d.expanduser().absolute()
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def manifest_files(directory: Path) -> list[tuple[Path, Path]]:
    """(manifest, code root) pairs in one plugin directory, sorted by name."""
    out: list[tuple[Path, Path]] = []
    try:
        children = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return out
    for child in children:
        if child.name.startswith("."):
            continue
        if child.is_dir():
            for name in MANIFEST_NAMES:
                candidate = Path(child.path, name)
                if candidate.is_file():
                    out.append((candidate, Path(child.path)))
                    break
        elif child.name.endswith(MANIFEST_SUFFIXES) and child.is_file():
            out.append((Path(child.path), directory))
    return out


def read_plugin_dir(manifest_path: Path, root: Path) -> Discovered:
    """Load one manifest of a directory plugin; raises ManifestError, or
    UnsafePluginError when others could change it (plugins/trust.py: checked before any
    of its code can be imported)."""
    from .manifest import load_manifest

    try:  # reading YAML runs no code; the id read makes the refusal say whose it is
        manifest = load_manifest(manifest_path)
    except ManifestError as e:
        trust.check_plugin(manifest_path, root, None, e.plugin_id)
        raise
    module = (manifest.entry or "").split(":")[0].split(".")[0]
    trust.check_plugin(manifest_path, root, module, manifest.id)
    if manifest.entry is None:
        raise ManifestError(manifest_path, [Problem(
            str(manifest_path), "entry",
            "required for a plugin directory: the object to load, e.g. plugin:MyPlugin")],
            manifest.id)
    if not ((root / f"{module}.py").is_file() or (root / module / "__init__.py").is_file()):
        raise ManifestError(manifest_path, [Problem(
            str(manifest_path), "entry",
            f"module {module!r} not found in {root} (no {module}.py nor {module}/__init__.py)")],
            manifest.id)
    return Discovered(manifest, "directory", str(manifest_path), root, manifest.entry,
                      manifest.id)


def discover_path(path: str | Path) -> Discovered:
    """One plugin: a folder holding manifest.yaml or plugin.yaml, or a manifest file.
    Raises ManifestError."""
    p = Path(path).absolute()
    if p.is_dir():
        for name in MANIFEST_NAMES:
            if (p / name).is_file():
                return read_plugin_dir(p / name, p)
        raise ManifestError(p, [Problem(str(p), "", "no manifest.yaml or plugin.yaml in this "
                                        "folder")])
    return read_plugin_dir(p, p.parent)


def discover_plugins(directory: str | Path) -> DiscoveryReport:
    """Every plugin manifest in ``directory``; invalid ones are reported and skipped."""
    report = DiscoveryReport()
    directory = Path(directory).absolute()
    if directory.exists() and not directory.is_dir():
        report.invalid.append(ManifestError(directory, [Problem(
            str(directory), "", "not a directory")]))
        return report
    found = manifest_files(directory)
    if found:
        try:  # where others may add a plugin, none is trusted
            trust.check_directory(directory)
        except UnsafePluginError as e:
            log.warning("plugin directory refused: %s", e)
            report.invalid.append(e)
            return report
    for manifest_path, root in found:
        try:
            report.found.append(read_plugin_dir(manifest_path, root))
        except InvalidPluginError as e:
            log.warning("plugin manifest skipped: %s", e)
            report.invalid.append(e)
    return report


def discover_entry_points(group: str = ENTRY_POINT_GROUP) -> DiscoveryReport:
    """Plugins declared by installed distributions. Nothing is imported here."""
    from importlib import metadata

    report = DiscoveryReport()
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        where = f"{dist.name}=={dist.version}" if dist is not None else "?"
        location = f"{where}: {ep.value}"
        if ":" not in ep.value:
            report.invalid.append(ManifestError(location, [Problem(
                location, "entry point", f"{ep.value!r} is not 'module:attr'")], ep.name))
            continue
        try:
            manifest = packaged_manifest(ep.value)
        except ManifestError as e:
            report.invalid.append(e)
            continue
        if manifest is not None and manifest.id != ep.name:
            report.invalid.append(ManifestError(location, [Problem(
                location, "id", f"the entry point is named {ep.name!r}, its manifest says "
                f"{manifest.id!r}")], ep.name))
            continue
        report.found.append(Discovered(manifest, "entry-point", location, None, ep.value,
                                       ep.name))
    return report


def packaged_manifest(entry: str) -> Manifest | None:
    """A manifest.yaml / plugin.yaml shipped beside the entry point's module, if any
    (found through the top-level package's location; nothing is imported)."""
    import importlib.util

    from .manifest import load_manifest

    parts = entry.split(":")[0].split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        folder = Path(base, *parts[1:-1]) if len(parts) > 1 else Path(base)
        if len(parts) > 1 and Path(base, *parts[1:]).is_dir():
            folder = Path(base, *parts[1:])  # the entry module is a package itself
        for name in MANIFEST_NAMES:
            if (folder / name).is_file():
                return load_manifest(folder / name)
    return None


def any_external(dirs: Iterable[str | Path], entry_points: bool = True,
                 group: str = ENTRY_POINT_GROUP) -> bool:
    """False only when there is certainly no external plugin to discover: no manifest
    file in ``dirs`` and no installed distribution that names ``group`` in its
    entry_points.txt. Reads directory listings and those small files only; anything it
    cannot judge by name (a zip on sys.path) counts as a plugin, so that the caller runs
    the real discovery."""
    if any(manifest_files(Path(d).absolute()) for d in dirs):
        return True
    return entry_points and _entry_point_group_declared(group)


def _entry_point_group_declared(group: str) -> bool:
    """Whether a distribution on sys.path may declare ``group`` (what
    ``importlib.metadata.entry_points`` reads: each sys.path entry's ``*.dist-info`` and
    ``*.egg-info`` folders), without importing importlib.metadata (~15 ms)."""
    marker = f"[{group}]"
    for entry in sys.path:
        path = entry or "."
        try:
            children = os.scandir(path)
        except NotADirectoryError:
            return True  # a zip or an egg on sys.path: let importlib.metadata read it
        except OSError:
            continue  # missing: importlib.metadata finds nothing there either
        with children:
            for child in children:
                if not child.name.lower().endswith((".dist-info", ".egg-info")):
                    continue
                try:
                    with open(os.path.join(child.path, "entry_points.txt"),
                              encoding="utf-8", errors="replace") as f:
                        if marker in f.read().replace(" ", ""):
                            return True
                except NotADirectoryError:
                    continue  # an .egg-info file (PKG-INFO only): no entry points
                except FileNotFoundError:
                    continue
                except OSError:
                    return True
    return False


def discover_all(dirs: Iterable[str | Path], entry_points: bool = True) -> DiscoveryReport:
    """Every directory in order, then the entry points. Two plugins with one id: the
    first found wins and the other is refused with an error naming both."""
    report = DiscoveryReport()
    for d in dirs:
        report.extend(discover_plugins(d))
    if entry_points:
        report.extend(discover_entry_points())
    first: dict[str, Discovered] = {}
    kept: list[Discovered] = []
    for item in report.found:
        other = first.get(item.name)
        if other is None:
            first[item.name] = item
            kept.append(item)
            continue
        report.invalid.append(DuplicatePluginError(
            f"plugin id {item.name!r} ({item.location}) is already provided by "
            f"{other.location}; refused the second"))
    report.found = kept
    return report
