"""``ksa plugin validate``: check a plugin folder the way its author needs before shipping.

Every problem at once, each with its file and field: the manifest's fields, the entry
module and object, info() against the manifest, the API version, the config schema's
defaults, ``requires`` against what is installed here, the categories, and an init/stop
with the default config under the sandbox's deadlines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

from .base import MiddlewarePlugin
from .configschema import apply_config_schema
from .deps import unsatisfied
from .discovery import MANIFEST_NAMES, Discovered
from .errors import InvalidPluginError, ManifestError, PluginError, Problem, UnsafePluginError
from .importer import forget
from .loader import import_plugin
from .manifest import ENTRY, Manifest, load_manifest
from .models import PluginConfig, PluginInfo, Timeouts
from .sandbox import Sandbox
from .trust import check_plugin


@dataclass
class ValidationReport:
    path: str
    manifest: Manifest | None = None
    info: PluginInfo | None = None
    categories: tuple[str, ...] = ()
    middleware_type: str | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _find_manifest(path: Path) -> tuple[Path | None, Path]:
    if path.is_dir():
        for name in MANIFEST_NAMES:
            if (path / name).is_file():
                return path / name, path
        return None, path
    return path, path.parent


def _raw_entry(manifest_path: Path) -> str | None:
    """The entry field of a manifest that failed validation elsewhere, when it is usable."""
    try:
        from .manifest import parse_yaml

        data = parse_yaml(manifest_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    entry = data.get("entry") if isinstance(data, dict) else None
    return entry if isinstance(entry, str) and ENTRY.match(entry) else None


def validate_plugin(path: str | Path, installed: dict[str, str] | None = None,
                    timeout: float = 10.0, manifest_only: bool = False) -> ValidationReport:
    """Check the plugin at ``path`` (a folder or its manifest file).

    ``installed``: id -> version of the plugins it may require (e.g. the builtins).
    ``manifest_only``: stop before its code is imported (the manifest, ``requires``, the
    config schema's defaults and the folder's permissions are checked)."""
    path = Path(path).absolute()
    manifest_path, root = _find_manifest(path)
    report = ValidationReport(str(path))
    if manifest_path is None:
        report.problems.append(Problem(str(path), "", "no manifest.yaml or plugin.yaml here"))
        return report
    file = str(manifest_path)
    entry: str | None
    try:
        report.manifest = manifest = load_manifest(manifest_path)
        entry = manifest.entry
        if entry is None:
            report.problems.append(Problem(file, "entry", "required for a plugin directory"))
    except ManifestError as e:
        report.problems.extend(e.problems)
        manifest, entry = None, _raw_entry(manifest_path)
    if manifest is not None:
        _check_requires(report, manifest, installed or {}, file)
        try:
            apply_config_schema(manifest.id, manifest.config_schema, PluginConfig())
        except PluginError as e:
            report.problems.append(Problem(file, "config_schema",
                                           f"the defaults do not validate: {e}"))
    if entry is None:
        return report
    pid = manifest.id if manifest else root.name
    try:  # others could change it: its code is not run
        check_plugin(manifest_path, root, entry.split(":")[0].split(".")[0], pid)
    except UnsafePluginError as e:
        report.problems.extend(e.problems)
        return report
    if manifest_only:
        return report
    item = Discovered(manifest, "directory", file, root, entry, pid)
    try:
        code, plugin, info = import_plugin(item, Sandbox(), timeout)
    except InvalidPluginError as e:
        report.problems.extend(e.problems)
        return report
    except PluginError as e:
        report.problems.append(Problem(file, "entry", str(e)))
        return report
    report.info = info
    try:
        _check_plugin(report, plugin, manifest, file, timeout)
    finally:
        forget(code.module_name)
    return report


def _check_requires(report: ValidationReport, manifest: Manifest,
                    installed: dict[str, str], file: str) -> None:
    for i, raw in enumerate(manifest.requires):
        req = Requirement(raw)
        have = installed.get(req.name)
        if have is None:
            report.warnings.append(Problem(file, f"requires[{i}]", f"{req.name} is not "
                                           "installed here; it must be where the plugin runs"))
        elif str(req.specifier) and unsatisfied(req, have):
            report.problems.append(Problem(file, f"requires[{i}]", f"requires {raw} but "
                                           f"{req.name} {have} is installed"))


def _check_plugin(report: ValidationReport, plugin: Any, manifest: Manifest | None,
                  file: str, timeout: float) -> None:
    if isinstance(plugin, MiddlewarePlugin):
        report.categories = plugin.categories()
        report.middleware_type = plugin.middleware_type()
        if not report.categories:
            report.problems.append(Problem(file, "entry", "the plugin has no @category "
                                           "check: diagnose would find nothing"))
    if manifest is None:
        return
    try:
        cfg = apply_config_schema(manifest.id, manifest.config_schema,
                                  PluginConfig(timeouts=Timeouts(init=timeout, stop=timeout)))
    except PluginError:
        return  # already reported
    sandbox = Sandbox()
    out = sandbox.run(manifest.id, "init", lambda d: plugin.init(d, cfg), timeout)
    if out.error is not None:
        report.problems.append(Problem(file, "entry", f"init with the default config: "
                                       f"{out.error}"))
        return
    out = sandbox.run(manifest.id, "stop", plugin.stop, timeout)
    if out.error is not None:
        report.problems.append(Problem(file, "entry", f"stop: {out.error}"))
