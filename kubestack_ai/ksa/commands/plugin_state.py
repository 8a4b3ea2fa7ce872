"""Plugin state in storage, shared by all workers: the storage side of ``ksa plugin
enable|disable|reload|rollback ID`` and what ``list``, ``info``, ``diagnose`` and
``action`` read of it.

A reload bumps the plugin's generation in storage (and keeps the location it named with
``--from``); each worker child compares the generation at the start of its next task and
reloads the plugin, from the newest stored location, with the stored config. A rollback
drops the newest location and bumps the generation. (A Celery broadcast would reach only
each worker's main process, not the prefork children that run plugins.) A disabled
plugin is refused by every worker from its next task, and by ``ksa diagnose`` unless
``--force``. Storage that cannot be read fails closed: a worker child goes by the last
state it read (none read: refused), a ``ksa`` command refuses unless ``--force``.
"""

from __future__ import annotations

import sys
from typing import Any

from kubestack_ai.ksa.output import CliError
from kubestack_ai.ksa.store import STORE_TIMEOUT, open_store
from kubestack_ai.workers.settings import Settings


def import_worker_modules() -> None:
    """The plugins the workers load (KSA_PLUGIN_MODULES) are known here too; the
    workers' catalog (and Celery) is imported only when there are such modules."""
    modules = Settings.from_env().plugin_modules
    if modules:
        from kubestack_ai.workers.catalog import import_plugin_modules  # noqa: PLC0415

        import_plugin_modules(modules)


def _no_storage_here() -> bool:
    """No database configured and no default SQLite file: no worker ever ran here."""
    settings = Settings.from_env()
    if settings.database_url:
        return False
    return not (settings.home / "ksa.db").exists()


def bump_generation(report: Any, source: str | None = None) -> None:
    """After ``ksa plugin reload`` succeeded here: every worker child reloads too, from
    ``source`` when the reload named one (``--from``; kept, so that a rollback can go
    back to the location before). (Said on stderr: stdout is the reload report.)"""
    from kubestack_ai.storage import StorageError  # noqa: PLC0415

    if _no_storage_here() and source is None:
        return
    try:
        rec = open_store().record_reload(report.plugin_id, source)
    except (StorageError, CliError) as e:
        print(f"ksa: warning: workers not told to reload {report.plugin_id}: {e}",
              file=sys.stderr)
        return
    where = f" from {source}" if source else ""
    print(f"{report.plugin_id}: workers reload it{where} before their next task "
          f"(generation {rec.generation})", file=sys.stderr)


def request_rollback(plugin_id: str) -> Any:
    """Every worker child loads the location before the newest ``--from`` one."""
    from kubestack_ai.storage import StorageError  # noqa: PLC0415

    store = open_store()
    try:
        return store.request_rollback(plugin_id)
    except StorageError as e:
        raise CliError(str(e), 1) from None
    finally:
        store.dispose()


def set_enabled(plugin_id: str, enabled: bool) -> int:
    """Store the plugin enabled or disabled and bump its generation; returns it."""
    from kubestack_ai.storage import StorageError  # noqa: PLC0415

    store = open_store()
    try:
        store.set_plugin_state(plugin_id, enabled=enabled)
        return int(store.request_reload(plugin_id))
    except StorageError as e:
        raise CliError(f"storage: {e}") from None
    finally:
        store.dispose()


def stored_states() -> dict[str, Any]:
    """Plugin id -> its PluginStateRecord in storage; {} when no storage exists here
    (nothing was ever stored) or it cannot be read (said on stderr: for showing only)."""
    states, err = read_states()
    if err is not None:
        print(f"ksa: warning: stored plugin state not shown: {err}", file=sys.stderr)
    return states


def read_states() -> tuple[dict[str, Any], str | None]:
    """(plugin id -> PluginStateRecord, why storage could not be read or None); ({},
    None) when no storage exists here: no worker ran here, nothing can be disabled."""
    if _no_storage_here():
        return {}, None
    settings = Settings.from_env()
    if not settings.database_url:
        # the default SQLite file, read without SQLAlchemy (its import alone is ~0.15 s)
        from kubestack_ai.storage.sqlite_read import read_plugin_states  # noqa: PLC0415

        records = read_plugin_states(settings.home / "ksa.db", STORE_TIMEOUT)
        if records is not None:
            return {r.plugin_id: r for r in records}, None
    from kubestack_ai.storage import StorageError, Store  # noqa: PLC0415

    # read without migrating first (Alembic costs a CLI start-up ~0.2 s); a schema that
    # is missing or older is migrated and read again
    store = Store()
    try:
        try:
            return {r.plugin_id: r for r in store.list_plugin_states()}, None
        except StorageError:
            store.dispose()
            store = open_store()
            return {r.plugin_id: r for r in store.list_plugin_states()}, None
    except (StorageError, CliError) as e:
        return {}, str(e)
    finally:
        store.dispose()


def disabled_refusal(plugin_id: str) -> str | None:
    """Why this plugin must not run here (stored disabled, or its state unreadable and
    never read on this machine before: it fails closed), or None.

    The state read is kept where the workers keep theirs (``$KSA_HOME/plugin-states.json``),
    so that a storage outage leaves this machine's ``ksa`` and workers going by the last
    state any of them read, as the workers' children do."""
    from kubestack_ai.workers.laststate import FILE_NAME, LastStates  # noqa: PLC0415

    last = LastStates(Settings.from_env().home / FILE_NAME)
    states, err = read_states()
    if err is not None:
        known = last.get(plugin_id)
        if known is None:
            return (f"plugin {plugin_id!r}: its state (enabled or disabled) cannot be read "
                    f"from storage ({err}) and was never read on this machine; refused, as "
                    "a disabled plugin is")
        print(f"ksa: warning: plugin {plugin_id!r}: its state cannot be read from storage "
              f"({err}); going by the last one read here ("
              f"{'enabled' if known else 'disabled'})", file=sys.stderr)
        if known:
            return None
        return (f"plugin {plugin_id!r} is disabled (the last state read here; storage "
                f"cannot be read now): `ksa plugin enable {plugin_id}` enables it")
    rec = states.get(plugin_id)
    last.put(plugin_id, rec is None or bool(rec.enabled))
    if rec is None or rec.enabled:
        return None
    return (f"plugin {plugin_id!r} is disabled (generation {rec.generation}): "
            f"`ksa plugin enable {plugin_id}` enables it")
