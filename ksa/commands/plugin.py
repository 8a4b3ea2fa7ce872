"""``ksa plugin list|info``."""

from __future__ import annotations

import argparse

from ksa.commands import plugin_state
from ksa.output import CliError, dump_json, table
from plugins import PluginError, PluginManager


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("plugin", help="list and inspect plugins")
    psub = p.add_subparsers(dest="plugin_command", metavar="ACTION", required=True)
    ls = psub.add_parser("list", help="every plugin with its version, source and state")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_list)
    info = psub.add_parser("info", help="one plugin's metadata and categories")
    info.add_argument("id")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)
    plugin_state.register(psub)


def manager() -> PluginManager:
    m = PluginManager()
    for err in m.load_builtins():
        print(f"ksa: warning: {err}")
    return m


def _describe(m: PluginManager, plugin_id: str) -> dict[str, object]:
    e = m.registry.entry(plugin_id)
    d: dict[str, object] = {**e.info.model_dump(mode="json"), "state": e.state.value,
                            "source": e.source, "middleware_type": e.middleware_type,
                            "last_error": e.last_error}
    cats = getattr(e.plugin, "categories", None)
    if callable(cats):
        d["categories"] = list(cats())
    return d


def cmd_list(args: argparse.Namespace) -> int:
    m = manager()
    rows = [_describe(m, i) for i in m.registry.ids()]
    if args.json:
        print(dump_json(rows))
        return 0
    print(table(["ID", "VERSION", "TYPE", "MIDDLEWARE", "STATE", "SOURCE", "NAME"],
                [[r["id"], r["version"], r["type"], r["middleware_type"] or "-", r["state"],
                  r["source"], r["name"]] for r in rows]))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    m = manager()
    try:
        d = _describe(m, args.id)
    except PluginError as e:
        raise CliError(str(e), 2) from None
    if args.json:
        print(dump_json(d))
        return 0
    width = max(len(k) for k in d)
    for k, v in d.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(map(str, v)) or "-"
        print(f"{k.ljust(width)}  {v if v not in (None, '') else '-'}")
    return 0
