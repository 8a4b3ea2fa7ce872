"""Plugin state in storage, shared by all workers: ``ksa plugin enable|disable ID``, and
the storage side of ``ksa plugin reload ID``.

A reload bumps the plugin's generation in storage; each worker child compares it at the
start of its next task and reloads the plugin with the stored config. (A Celery
broadcast would reach only each worker's main process, not the prefork children that
run plugins.) A disabled plugin is refused by every worker from its next task.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubestack_ai.ksa.output import CliError
from kubestack_ai.ksa.store import open_store
from kubestack_ai.workers.settings import Settings


def register(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    # the plugins the workers load (KSA_PLUGIN_MODULES) are known here too; the workers'
    # catalog (and Celery) is imported only when there are such modules
    modules = Settings.from_env().plugin_modules
    if modules:
        from kubestack_ai.workers.catalog import import_plugin_modules  # noqa: PLC0415

        import_plugin_modules(modules)
    for name, helptext in (("enable", "let workers run a plugin"),
                           ("disable", "make every worker refuse a plugin's tasks")):
        p = psub.add_parser(name, help=helptext)
        p.add_argument("id")
        p.set_defaults(func=cmd_state, action=name)



def _no_storage_here() -> bool:
    """No database configured and no default SQLite file: no worker ever ran here."""
    settings = Settings.from_env()
    if settings.database_url:
        return False
    return not (settings.home / "ksa.db").exists()


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
