"""``ksa plugin reload|enable|disable ID``: plugin state in storage, shared by all workers.

A reload bumps the plugin's generation; each worker child compares it at the start of
its next task and reloads the plugin with the stored config. (A Celery broadcast would
reach only each worker's main process, not the prefork children that run plugins.)
"""

from __future__ import annotations

import argparse

from ksa.output import CliError


def register(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, helptext in (("reload", "reload a plugin on every worker before its next task"),
                           ("enable", "let workers run a plugin"),
                           ("disable", "make every worker refuse a plugin's tasks")):
        p = psub.add_parser(name, help=helptext)
        p.add_argument("id")
        p.set_defaults(func=cmd_state, action=name)


def cmd_state(args: argparse.Namespace) -> int:
    from plugins import builtin_ids  # noqa: PLC0415
    from storage import StorageError, Store  # noqa: PLC0415
    from workers.catalog import import_plugin_modules  # noqa: PLC0415
    from workers.settings import Settings  # noqa: PLC0415

    import_plugin_modules(Settings.from_env().plugin_modules)  # the plugins workers load
    if args.id not in builtin_ids():
        known = ", ".join(builtin_ids())
        raise CliError(f"unknown plugin {args.id!r} (known: {known})", 2)
    try:
        store = Store()
        store.migrate()
        if args.action == "reload":
            gen = store.request_reload(args.id)
            print(f"{args.id}: reload requested (generation {gen}); workers pick it up "
                  "before their next task")
        else:
            enabled = args.action == "enable"
            store.set_plugin_state(args.id, enabled=enabled)
            gen = store.request_reload(args.id)
            print(f"{args.id}: {'enabled' if enabled else 'disabled'} (generation {gen})")
    except StorageError as e:
        raise CliError(f"storage: {e}") from None
    return 0
