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


STORE_TIMEOUT = 5.0
"""Seconds each storage call of ``ksa diagnose`` may wait (connect, lock, statement)."""


class CliHistory:
    """``ksa diagnose``'s run history in the local store, as ``ksa run``'s workers keep it:
    the earlier runs' metrics before the diagnosis (rates and windows judge counters
    against them), the run itself after it. A store that fails costs a warning on stderr,
    never the diagnosis: it goes on without history, unstored.

    A target without ``--name`` whose endpoint a fleet target has is that target: its
    runs are stored under the fleet's key (one server, one target)."""

    def __init__(self, target: Any, plugin_id: str, *, named: bool = False) -> None:
        self.target, self.target_key, self.plugin_id = target, target.key, plugin_id
        self.named = named
        self._store: Any = None

    def _warn(self, what: str, e: Exception) -> None:
        import sys

        print(f"ksa: warning: storage: {what}: {type(e).__name__}: {e} (--no-store skips "
              "the store)", file=sys.stderr)
        self.close()

    def snapshots(self) -> tuple[Any, ...]:
        """The earlier runs' metrics, oldest first; () when the store cannot be read."""
        from kubestack_ai.storage import Store

        try:
            self._store = Store(None, timeout=STORE_TIMEOUT)
            self._store.migrate()
            flush_spool(self._store)
            self._fleet_key()
            return tuple(self._store.snapshots(self.target_key, self.plugin_id))
        except Exception as e:  # any storage failure: diagnose without history
            self._warn("history not read, counters judged in this run only", e)
            return ()

    def _fleet_key(self) -> None:
        import sys

        if self.named:
            return
        key = self._store.fleet_key_for(self.target.type, self.target.endpoints)
        if key is not None and key != self.target_key:
            self.target_key = key
            print(f"ksa: stored under the fleet's target {key} (same endpoint)", file=sys.stderr)

    def record(self, categories: tuple[str, ...], result: Any) -> bool:
        """Store the run (never cached: the workers' cache is for scheduled runs)."""
        import uuid

        if self._store is None:
            return False
        try:
            return bool(self._store.record_run(f"cli-{uuid.uuid4()}", self.target_key,
                                               self.plugin_id, categories, result, None))
        except Exception as e:  # the diagnosis stands; only its history is lost
            self._warn("run not stored", e)
            return False
        finally:
            self.close()

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            try:
                store.dispose()
            except Exception:  # noqa: BLE001 (closing a broken pool: nothing left to do)
                pass
