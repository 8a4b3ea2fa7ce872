"""``ksa plugin list|info|validate|reload|enable|disable``.

External plugins come from ``/etc/kubestack-ai/plugins/``, the directories in
``KSA_PLUGIN_PATH``, ``--plugin-dir`` (global or per command) and entry points in the
group ``kubestack_ai.plugins``.

``list``, ``info``, ``enable``, ``disable``, ``rollback`` and ``validate --manifest-only``
read external plugins' manifests only: no external plugin code runs (its state shows
``found``). Code runs when a plugin is used (``ksa diagnose``, a worker), reloaded, or
validated in full.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubestack_ai.ksa.commands import index, plugin_state
from kubestack_ai.ksa.output import CliError, dump_json, table

if TYPE_CHECKING:  # the framework (pydantic) is imported when a command runs
    from kubestack_ai.plugins import PluginManager


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plugin", help="list, inspect, validate and reload plugins")
    psub = p.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    ls = psub.add_parser("list", help="every plugin with its version, source and state")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    info = psub.add_parser("info", help="one plugin's metadata, manifest and categories")
    info.add_argument("id")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)
    val = psub.add_parser("validate", help="check a plugin folder before shipping it")
    val.add_argument("path", help="the plugin folder (or its manifest file)")
    val.add_argument("--timeout", type=float, default=10.0,
                     help="seconds for import and init (default 10)")
    val.add_argument("--manifest-only", action="store_true",
                     help="check the manifest and the folder's permissions; run no plugin code")
    val.set_defaults(func=cmd_validate)
    rel = psub.add_parser("reload", help="load a plugin's code again and swap it in")
    rel.add_argument("id")
    rel.add_argument("--from", dest="source", metavar="PATH",
                     help="load the new version from this folder instead")
    rel.set_defaults(func=cmd_reload)
    rb = psub.add_parser("rollback", help="make every worker go back to the version before "
                                          "the last reload --from PATH")
    rb.add_argument("id")
    rb.set_defaults(func=cmd_rollback)
    toggles = [rb]
    for name, helptext in (("enable", "let workers run a plugin"),
                           ("disable", "make every worker (and ksa diagnose) refuse a plugin")):
        t = psub.add_parser(name, help=helptext)
        t.add_argument("id")
        t.set_defaults(func=cmd_state, enable=name == "enable")
        toggles.append(t)
    for cmd in (ls, info, val, rel, *toggles):
        add_plugin_dir_option(cmd, default=argparse.SUPPRESS)
    index.register_plugin_actions(psub)  # search, install, outdated, update, verify
    plugin_state.import_worker_modules()


def add_plugin_dir_option(parser: argparse.ArgumentParser, default: object = None) -> None:
    parser.add_argument("--plugin-dir", action="append", metavar="DIR",
                        default=[] if default is None else default,
                        help="also load external plugins from DIR (repeatable; "
                             "env KSA_PLUGIN_PATH too)")


def load_external_plugins(m: PluginManager, args: argparse.Namespace) -> None:
    from kubestack_ai.plugins import plugin_dirs

    dirs = plugin_dirs(getattr(args, "plugin_dir", None) or ())
    for err in m.load_external(dirs):
        print(f"ksa: warning: {err}", file=sys.stderr)


def manager(args: argparse.Namespace | None = None) -> PluginManager:
    from kubestack_ai.plugins import PluginManager  # noqa: PLC0415

    m = PluginManager()
    for err in m.load_builtins():
        print(f"ksa: warning: {err}", file=sys.stderr)
    load_external_plugins(m, args or argparse.Namespace())
    return m


def builtin_manager() -> PluginManager:
    """The builtins only (our own code, and what KSA_PLUGIN_MODULES registers): no
    external plugin's code is imported."""
    from kubestack_ai.plugins import PluginManager  # noqa: PLC0415

    m = PluginManager()
    for err in m.load_builtins():
        print(f"ksa: warning: {err}", file=sys.stderr)
    return m


def external_manifests(args: argparse.Namespace) -> list[Any]:
    """Every external plugin found (a Discovered: its manifest, where its code is), read
    from manifests only; invalid or unsafe ones, and ids a builtin has, are warned about
    and left out. No plugin code runs."""
    from kubestack_ai.plugins.discovery import any_external, discover_all, plugin_dirs

    dirs = plugin_dirs(getattr(args, "plugin_dir", None) or ())
    if not any_external(dirs):
        return []
    report = discover_all(dirs)
    for err in report.invalid:
        print(f"ksa: warning: {err}", file=sys.stderr)
    builtin = set(builtin_ids())
    found = []
    for item in report.found:
        if item.name in builtin:
            print(f"ksa: warning: plugin id {item.name!r} ({item.location}) is already "
                  "provided by builtin; refused the second", file=sys.stderr)
            continue
        found.append(item)
    return found


def builtin_ids() -> list[str]:
    """The builtins' ids: from the catalogue (no import), or, when a worker plugin module
    is configured (it may register more), from the loaded registry of builtins."""
    from kubestack_ai.plugins.catalogue import BUILTINS  # noqa: PLC0415
    from kubestack_ai.workers.settings import Settings  # noqa: PLC0415

    if not Settings.from_env().plugin_modules:
        return list(BUILTINS)
    from kubestack_ai.plugins.builtins import builtin_ids as loaded  # noqa: PLC0415

    return loaded()


def _manifest_row(item: Any, stored: dict[str, Any]) -> dict[str, object]:
    """An external plugin as its manifest describes it (state ``found``: not loaded)."""
    man = item.manifest
    info: dict[str, Any] = {"id": item.name, "name": item.name, "version": "-", "type": "-"}
    if man is not None:
        info.update(name=man.name, version=man.version, type=man.type.value,
                    description=man.description, author=man.author,
                    capabilities=list(man.capabilities), api_version=man.api_version)
    return _row(info, "found", stored, item.source, item.location, None, None, None)


def _describe(m: PluginManager, plugin_id: str, stored: dict[str, Any]) -> dict[str, object]:
    """What this process loaded, and what storage says every worker must do with it."""
    e = m.registry.entry(plugin_id)
    cats = getattr(e.plugin, "categories", None)
    return _row(e.info.model_dump(mode="json"), e.state.value, stored, e.source,
                str(e.extra.get("location") or "-"), e.middleware_type, e.last_error,
                list(cats()) if callable(cats) else None)


def _row(info: dict[str, Any], state: str, stored: dict[str, Any], source: str,
         location: str, middleware_type: str | None, last_error: str | None,
         categories: list[str] | None) -> dict[str, object]:
    rec = stored.get(info["id"])
    d: dict[str, object] = {**info, "state": state,
                            "enabled": rec.enabled if rec is not None else True,
                            "generation": rec.generation if rec is not None else 0,
                            "config_overrides": rec.config if rec is not None else {},
                            "workers_load_from": (rec.source if rec is not None else None)
                            or "its plugin directory / package",
                            "source": source, "location": location,
                            "middleware_type": middleware_type, "last_error": last_error}
    if categories is not None:
        d["categories"] = categories
    return d


def _catalogued_builtins(args: argparse.Namespace,
                         stored: dict[str, Any]) -> list[dict[str, object]] | None:
    """The builtins' rows from their catalogue, without importing any plugin code nor
    the framework (pydantic): the catalogue says what loading them would (a test holds
    the two equal). None when a worker plugin module is configured: the caller loads the
    builtins, so that the listing shows what those modules registered."""
    from kubestack_ai.plugins.catalogue import BUILTINS  # noqa: PLC0415
    from kubestack_ai.workers.settings import Settings  # noqa: PLC0415

    if Settings.from_env().plugin_modules:
        return None
    return [_row(b["info"], "loaded", stored, "builtin", "-", b["middleware_type"], None,
                 list(b["categories"])) for b in BUILTINS.values()]


def cmd_list(args: argparse.Namespace) -> int:
    stored = plugin_state.stored_states()
    rows = _catalogued_builtins(args, stored)
    if rows is None:
        m = builtin_manager()
        rows = [_describe(m, i, stored) for i in m.registry.ids()]
    rows += [_manifest_row(item, stored) for item in external_manifests(args)]
    if args.json:
        print(dump_json(rows))
        return 0
    print(table(["ID", "VERSION", "TYPE", "MIDDLEWARE", "ENABLED", "GEN", "CONFIG", "STATE",
                 "SOURCE", "NAME"],
                [[r["id"], r["version"], r["type"], r["middleware_type"] or "-",
                  "yes" if r["enabled"] else "DISABLED", r["generation"],
                  "stored" if r["config_overrides"] else "default", r["state"], r["source"],
                  r["name"]] for r in rows]))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import yaml  # noqa: PLC0415

    from kubestack_ai.plugins import PluginError  # noqa: PLC0415

    m = builtin_manager()
    if args.id not in m.registry:
        return _info_external(args)
    stored = plugin_state.stored_states()
    try:
        d = _describe(m, args.id, stored)
    except PluginError as e:
        raise CliError(str(e), 2) from None
    from kubestack_ai.plugins.execution import specs_of  # noqa: PLC0415

    entry = m.registry.entry(args.id)
    from pydantic import ValidationError  # noqa: PLC0415

    from kubestack_ai.plugins.isolation import describe  # noqa: PLC0415
    from kubestack_ai.workers.catalog import merge_config  # noqa: PLC0415

    rec = stored.get(args.id)  # the stored config over the plugin's own, as workers run it
    try:
        config = merge_config(entry.config, getattr(rec, "config", None))
    except ValidationError as e:  # the count only: a value may be what should stay unsaid
        raise CliError(f"plugin {args.id!r}: stored config invalid: {e.error_count()} "
                       "errors (workers refuse to run it)", 2) from None
    d["isolation"] = describe(args.id, config, entry.source == "builtin")
    manifest = entry.extra.get("manifest") or builtin_manifest(entry)
    actions = [s.model_dump(mode="json") for s in specs_of(entry.plugin, entry.info).values()]
    if args.json:
        print(dump_json({**d, "manifest": manifest, "action_specs": actions}))
        return 0
    width = max(len(k) for k in d)
    for k, v in d.items():
        if k in ("actions", "dangerous_actions", "isolation"):
            continue  # listed below
        if isinstance(v, (list, tuple)):
            v = ", ".join(map(str, v)) or "-"
        elif isinstance(v, dict):
            v = json.dumps(v, sort_keys=True) if v else "-"
        print(f"{k.ljust(width)}  {v if v not in (None, '') else '-'}")
    _print_isolation(d["isolation"])
    print("\nactions:" if actions else "\nactions: none")
    for a in actions:
        print("  " + render_action_spec(a).replace("\n", "\n  "))
    if manifest:
        where = d["location"] if entry.extra.get("manifest") else "builtin, from its code"
        print(f"\nmanifest ({where}):")
        text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
        print("\n".join("  " + line for line in text.splitlines()))
    return 0


def _print_isolation(iso: object) -> None:
    assert isinstance(iso, dict)
    print(f"\nisolation: {iso['mode']}" + (" (KSA_ISOLATION=strict)" if iso.get("strict") else ""))
    if iso.get("refused"):
        print(f"  {iso['refused']}")
    for name, state in (iso.get("layers") or {}).items():
        print(f"  {name.ljust(10)}  {state}")


def _info_external(args: argparse.Namespace) -> int:
    """An external plugin's manifest and stored state; its code is not run (its actions
    and categories are its code's to say: ``ksa plugin validate PATH`` loads it)."""
    import yaml  # noqa: PLC0415

    from kubestack_ai.plugins import PluginConfig  # noqa: PLC0415
    from kubestack_ai.plugins.isolation import describe  # noqa: PLC0415

    item = _find_external(args, args.id)
    stored = plugin_state.stored_states()
    d = _manifest_row(item, stored)
    rec = stored.get(args.id)
    config = PluginConfig.model_validate(getattr(rec, "config", None) or {})
    d["isolation"] = describe(args.id, config, False)
    manifest = item.manifest.model_dump(mode="json") if item.manifest else None
    if args.json:
        print(dump_json({**d, "manifest": manifest, "action_specs": None}))
        return 0
    iso = d.pop("isolation")
    width = max(len(k) for k in d)
    for k, v in d.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(map(str, v)) or "-"
        elif isinstance(v, dict):
            v = json.dumps(v, sort_keys=True) if v else "-"
        print(f"{k.ljust(width)}  {v if v not in (None, '') else '-'}")
    _print_isolation(iso)
    print("\nactions and categories: declared by its code, not run here "
          f"(`ksa plugin validate {Path(item.location).parent}` loads it)")
    if manifest:
        print(f"\nmanifest ({d['location']}):")
        text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
        print("\n".join("  " + line for line in text.splitlines()))
    return 0


def _find_external(args: argparse.Namespace, plugin_id: str) -> Any:
    found = external_manifests(args)
    for item in found:
        if item.name == plugin_id:
            return item
    known = ", ".join([*builtin_ids(), *(i.name for i in found)])
    raise CliError(f"unknown plugin {plugin_id!r} (known: {known})", 2)


def known_ids(args: argparse.Namespace) -> list[str]:
    """Builtins and external plugins by manifest: no external plugin code runs."""
    return [*builtin_ids(), *(i.name for i in external_manifests(args))]


def render_action_spec(a: dict[str, Any]) -> str:
    flags = [x for x, on in (("DANGEROUS: run only with --allow " + a["name"], a["dangerous"]),
                             ("dry run", a["dry_run"])) if on]
    lines = [f"{a['name']}{' [' + '; '.join(flags) + ']' if flags else ''}"]
    if a["description"]:
        lines.append(f"    {a['description']}")
    for name, schema in a["params"].items():
        if name == "dry_run":
            continue  # --dry-run
        kind = schema.get("type") or ("one of " + "|".join(map(str, schema["enum"]))
                                      if "enum" in schema else "any")
        if isinstance(kind, list):
            kind = "|".join(kind)
        bounds = "".join(f", {op} {schema[k]}" for k, op in (("minimum", ">="),
                                                             ("maximum", "<=")) if k in schema)
        req = ", required" if name in a["required"] else (
            f", default {schema['default']}" if "default" in schema else "")
        desc = f": {schema['description']}" if schema.get("description") else ""
        lines.append(f"    -o {name}=  ({kind}{bounds}{req}){desc}")
    return "\n".join(lines)


def builtin_manifest(entry: Any) -> dict[str, Any]:
    """A builtin's manifest-equivalent, from its code: what a plugin.yaml would say,
    with the config schema's defaults (thresholds from the package's constants.DEFAULTS,
    timeouts and limits from PluginConfig)."""
    import importlib

    from kubestack_ai.plugins import PluginConfig

    info, cls = entry.info, type(entry.plugin)
    try:
        defaults = dict(getattr(importlib.import_module(
            cls.__module__.rpartition(".")[0] + ".constants"), "DEFAULTS", {}))
    except ImportError:
        defaults = {}
    cfg = PluginConfig().model_dump(mode="json")
    schema: dict[str, Any] = {"type": "object", "properties": {
        "thresholds": {"type": "object", "additionalProperties": False, "properties": {
            k: {"type": "number", "default": v} for k, v in sorted(defaults.items())}},
        "timeouts": {"type": "object", "properties": {
            k: {"type": "number", "exclusiveMinimum": 0, "default": v}
            for k, v in cfg["timeouts"].items()}},
        "memory_limit_mb": {"type": ["integer", "null"], "default": cfg["memory_limit_mb"]},
        "allowed_actions": {"type": ["array", "null"], "items": {"enum": list(info.actions)},
                            "default": None},
    }}
    target_options = getattr(cls, "target_options", lambda: None)()
    out: dict[str, Any] = {
        "id": info.id, "name": info.name, "version": info.version, "type": info.type.value,
        "api_version": info.api_version, "entry": f"{cls.__module__}:{cls.__qualname__}",
        "description": info.description, "author": info.author, "requires": [],
        "capabilities": list(info.capabilities), "config_schema": schema}
    if target_options is not None:
        out["target_options"] = target_options
    return out


def cmd_rollback(args: argparse.Namespace) -> int:
    """Through storage: this process has no earlier version loaded, the workers'
    children load the stored location from their next task (generation moved)."""
    if index.rollback_installed(args.id):  # installed from an index: its previous version
        return 0
    ids = known_ids(args)
    if args.id not in ids:
        raise CliError(f"unknown plugin {args.id!r} (known: {', '.join(ids)})", 2)
    rec = plugin_state.request_rollback(args.id)
    where = rec.source or "its plugin directory"
    print(f"{args.id}: workers roll back to {where} before their next task "
          f"(generation {rec.generation})")
    return 0


def cmd_state(args: argparse.Namespace) -> int:
    """Enable or disable any plugin this process sees: builtin, plugin folder, entry point."""
    ids = known_ids(args)
    if args.id not in ids:
        raise CliError(f"unknown plugin {args.id!r} (known: {', '.join(ids)})", 2)
    gen = plugin_state.set_enabled(args.id, args.enable)
    print(f"{args.id}: {'enabled' if args.enable else 'disabled'} (generation {gen})")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.discovery import MANIFEST_NAMES, manifest_files

    # what it may require, from manifests: validating one plugin runs no other's code
    installed = {e.info.id: e.info.version for e in builtin_manager().registry.entries()}
    installed.update({i.name: i.manifest.version for i in external_manifests(args)
                      if i.manifest is not None})
    path = Path(args.path)
    targets = [path]
    if path.is_dir() and not any((path / n).is_file() for n in MANIFEST_NAMES):
        # a plugins directory: validate every plugin in it
        targets = [m for m, _ in manifest_files(path.absolute())] or [path]
    failed = 0
    for target in targets:
        failed += _validate_one(target, installed, args.timeout, args.manifest_only)
    return 1 if failed else 0


def _validate_one(path: object, installed: dict[str, str], timeout: float,
                  manifest_only: bool = False) -> int:
    from kubestack_ai.plugins.validate import validate_plugin  # noqa: PLC0415

    report = validate_plugin(str(path), installed, timeout=timeout,
                             manifest_only=manifest_only)
    for w in report.warnings:
        print(f"warning: {w}")
    for p in report.problems:
        print(f"error: {p}")
    if not report.ok:
        print(f"{len(report.problems)} problem(s) in {report.path}", file=sys.stderr)
        return 1
    if manifest_only:
        assert report.manifest is not None
        print(f"ok: {report.manifest.id} {report.manifest.version} (manifest only: its code "
              "was not run)")
        return 0
    info = report.info
    assert info is not None
    cats = ", ".join(report.categories) or "-"
    print(f"ok: {info.id} {info.version} (api {info.api_version}, categories: {cats})")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins import ReloadError  # noqa: PLC0415

    m = manager(args)
    # a reload that succeeded here is announced to every worker child through storage
    source = str(Path(args.source).resolve()) if args.source else None
    m.reload_hooks.append(lambda report: plugin_state.bump_generation(report, source))
    if args.id not in m.registry:
        raise CliError(f"unknown plugin {args.id!r} (loaded: {', '.join(m.registry.ids())})", 2)
    try:
        report = m.hot_reload(args.id, args.source)
    except ReloadError as e:
        raise CliError(str(e), 1) from None
    report.wait_retired(10)
    ms = ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in report.seconds.items())
    print(f"reloaded {report.plugin_id}: {report.old_version} -> {report.new_version} "
          f"from {report.location} ({ms})")
    return 0
