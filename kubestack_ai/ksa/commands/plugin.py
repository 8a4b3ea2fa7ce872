"""``ksa plugin list|info|validate|reload``.

External plugins come from ``/etc/kubestack-ai/plugins/``, the directories in
``KSA_PLUGIN_PATH``, ``--plugin-dir`` (global or per command) and entry points in the
group ``kubestack_ai.plugins``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from kubestack_ai.ksa.commands import plugin_state
from kubestack_ai.ksa.output import CliError, dump_json, table

if TYPE_CHECKING:  # the framework (pydantic) is imported when a command runs
    from kubestack_ai.plugins import PluginManager

"""Called after ``ksa plugin reload`` succeeded in this process: the workers add one
that bumps the plugin's generation in storage, so every worker reloads it too."""


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
    val.set_defaults(func=cmd_validate)
    rel = psub.add_parser("reload", help="load a plugin's code again and swap it in")
    rel.add_argument("id")
    rel.add_argument("--from", dest="source", metavar="PATH",
                     help="load the new version from this folder instead")
    rel.set_defaults(func=cmd_reload)
    for cmd in (ls, info, val, rel):
        add_plugin_dir_option(cmd, default=argparse.SUPPRESS)
    plugin_state.register(psub)


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


def _describe(m: PluginManager, plugin_id: str) -> dict[str, object]:
    e = m.registry.entry(plugin_id)
    d: dict[str, object] = {**e.info.model_dump(mode="json"), "state": e.state.value,
                            "source": e.source, "location": e.extra.get("location") or "-",
                            "middleware_type": e.middleware_type, "last_error": e.last_error}
    cats = getattr(e.plugin, "categories", None)
    if callable(cats):
        d["categories"] = list(cats())
    return d


def cmd_list(args: argparse.Namespace) -> int:
    m = manager(args)
    rows = [_describe(m, i) for i in m.registry.ids()]
    if args.json:
        print(dump_json(rows))
        return 0
    print(table(["ID", "VERSION", "TYPE", "MIDDLEWARE", "STATE", "SOURCE", "NAME"],
                [[r["id"], r["version"], r["type"], r["middleware_type"] or "-", r["state"],
                  r["source"], r["name"]] for r in rows]))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import yaml  # noqa: PLC0415

    from kubestack_ai.plugins import PluginError  # noqa: PLC0415

    m = manager(args)
    try:
        d = _describe(m, args.id)
    except PluginError as e:
        raise CliError(str(e), 2) from None
    manifest = m.registry.entry(args.id).extra.get("manifest")
    if args.json:
        print(dump_json({**d, "manifest": manifest}))
        return 0
    width = max(len(k) for k in d)
    for k, v in d.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(map(str, v)) or "-"
        print(f"{k.ljust(width)}  {v if v not in (None, '') else '-'}")
    if manifest:
        print(f"\nmanifest ({d['location']}):")
        text = yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
        print("\n".join("  " + line for line in text.splitlines()))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from kubestack_ai.plugins.discovery import manifest_files
    from kubestack_ai.plugins.manifest import MANIFEST_NAMES

    installed = {e.info.id: e.info.version for e in manager(args).registry.entries()}
    path = Path(args.path)
    targets = [path]
    if path.is_dir() and not any((path / n).is_file() for n in MANIFEST_NAMES):
        # a plugins directory: validate every plugin in it
        targets = [m for m, _ in manifest_files(path.absolute())] or [path]
    failed = 0
    for target in targets:
        failed += _validate_one(target, installed, args.timeout)
    return 1 if failed else 0


def _validate_one(path: object, installed: dict[str, str], timeout: float) -> int:
    from kubestack_ai.plugins.validate import validate_plugin  # noqa: PLC0415

    report = validate_plugin(str(path), installed, timeout=timeout)
    for w in report.warnings:
        print(f"warning: {w}")
    for p in report.problems:
        print(f"error: {p}")
    if not report.ok:
        print(f"{len(report.problems)} problem(s) in {report.path}", file=sys.stderr)
        return 1
    info = report.info
    assert info is not None
    cats = ", ".join(report.categories) or "-"
    print(f"ok: {info.id} {info.version} (api {info.api_version}, categories: {cats})")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins import ReloadError  # noqa: PLC0415

    m = manager(args)
    # a reload that succeeded here is announced to every worker child through storage
    m.reload_hooks.append(plugin_state.bump_generation)
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
