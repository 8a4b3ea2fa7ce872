"""The storage the CLI's commands share, opened (and migrated) only when one needs it."""

from __future__ import annotations

from typing import Any

from kubestack_ai.ksa.output import CliError


def open_store(url: str | None = None) -> Any:
    """A migrated ``storage.Store`` (``url``, else $KSA_DATABASE_URL, else the SQLite file);
    a storage error becomes one CLI error line. SQLAlchemy is imported here, not at start-up."""
    from kubestack_ai.storage import StorageError, Store

    try:
        store = Store(url)
        store.migrate()
    except StorageError as e:
        raise CliError(f"storage: {e}") from None
    flush_spool(store)
    return store


def flush_spool(store: Any) -> None:
    """Write the runs the workers kept ($KSA_HOME/spool) while the database was
    unreachable, if any: every command that opens the store does."""
    from kubestack_ai.storage.spool import Spool, default_dir

    Spool(default_dir()).flush(lambda run: run.record(store))
