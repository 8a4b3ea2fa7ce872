"""Plugin state in storage, shared by all workers: ``ksa plugin enable|disable ID``, and
the storage side of ``ksa plugin reload ID``.

A reload bumps the plugin's generation in storage; each worker child compares it at the
start of its next task and reloads the plugin with the stored config. (A Celery
broadcast would reach only each worker's main process, not the prefork children that
run plugins.) A disabled plugin is refused by every worker from its next task.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from kubestack_ai.ksa.output import CliError
from kubestack_ai.ksa.store import open_store


def register(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from kubestack_ai.ksa.commands.plugin import RELOAD_HOOKS  # noqa: PLC0415 (plugin imports us)

    # the plugins the workers load (KSA_PLUGIN_MODULES) are known here too; the workers
    # package (and Celery) is imported only when there are such modules
    if os.environ.get("KSA_PLUGIN_MODULES", "").strip():
        from kubestack_ai.workers.catalog import import_plugin_modules  # noqa: PLC0415
        from kubestack_ai.workers.settings import Settings  # noqa: PLC0415

        import_plugin_modules(Settings.from_env().plugin_modules)
    if bump_generation not in RELOAD_HOOKS:
        RELOAD_HOOKS.append(bump_generation)
    for name, helptext in (("enable", "let workers run a plugin"),
                           ("disable", "make every worker refuse a plugin's tasks")):
        p = psub.add_parser(name, help=helptext)
        p.add_argument("id")
        p.set_defaults(func=cmd_state, action=name)



def _no_storage_here() -> bool:
    """No database configured and no default SQLite file: no worker ever ran here."""
    import os  # noqa: PLC0415

    from kubestack_ai.storage import default_url  # noqa: PLC0415

    url = default_url()
    if os.environ.get("KSA_DATABASE_URL") or not url.startswith("sqlite:///"):
        return False
    return not os.path.exists(url.removeprefix("sqlite:///"))


def bump_generation(report: Any) -> None:
    """After ``ksa plugin reload`` succeeded here: every worker child reloads too.
    (Said on stderr: stdout is the reload report.)"""
    from kubestack_ai.storage import StorageError  # noqa: PLC0415

    if _no_storage_here():
        return
    try:
        gen = open_store().request_reload(report.plugin_id)
    except (StorageError, CliError) as e:
        print(f"ksa: warning: workers not told to reload {report.plugin_id}: {e}",
              file=sys.stderr)
        return
    print(f"{report.plugin_id}: workers reload it before their next task (generation {gen})",
          file=sys.stderr)


def cmd_state(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins import builtin_ids  # noqa: PLC0415
    from kubestack_ai.storage import StorageError  # noqa: PLC0415

    if args.id not in builtin_ids():
        known = ", ".join(builtin_ids())
        raise CliError(f"unknown plugin {args.id!r} (known: {known})", 2)
    store = open_store()
    try:
        enabled = args.action == "enable"
        store.set_plugin_state(args.id, enabled=enabled)
        gen = store.request_reload(args.id)
    except StorageError as e:
        raise CliError(f"storage: {e}") from None
    print(f"{args.id}: {'enabled' if enabled else 'disabled'} (generation {gen})")
    return 0
