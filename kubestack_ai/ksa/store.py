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
        _ready(store)
    except StorageError as e:
        raise CliError(f"storage: {e}") from None
    return store


RETRY = 2.0
"""Seconds between two tries of a store that was down when ``ksa run`` or ``ksa serve``
started."""


def open_store_when_up(who: str) -> Any:
    """The store for a long-running command (``ksa run``, ``ksa serve``): migrated, and
    the spool written, now if the database answers; if it is down (or has no schema
    yet), the same store is returned at once and a thread migrates it and writes the
    spool as soon as it answers (meanwhile the workers spool their runs and the view
    says storage is down). Any other storage error (a bad URL) is the CLI's error."""
    import sys
    import threading
    import time

    from kubestack_ai.storage import StorageError, StorageUnavailable, Store
    from kubestack_ai.storage.spool import Spool, default_dir

    spool = Spool(default_dir())
    try:
        spool.clean()
    except OSError as e:
        print(f"{who}: warning: spool {spool.dir}: {e}", file=sys.stderr, flush=True)
    try:
        store = Store(None)
        _ready(store)
        return store
    except StorageUnavailable as e:
        print(f"{who}: warning: {e}; starting anyway: runs are kept in the spool "
              f"{spool.dir} and written when it is back (tried every {RETRY:g} s)",
              file=sys.stderr, flush=True)
    except StorageError as e:
        raise CliError(f"storage: {e}") from None

    def wait() -> None:
        said = ""
        while True:
            time.sleep(RETRY)
            try:
                _ready(store)
            except StorageUnavailable:
                continue
            except StorageError as e:  # it answers, and refuses (a failed migration): say so
                if str(e) != said:
                    said = str(e)
                    print(f"{who}: error: storage: {e} (retrying)", file=sys.stderr, flush=True)
                continue
            print(f"{who}: storage is back: {store.masked_url} migrated, the spool written",
                  file=sys.stderr, flush=True)
            return

    threading.Thread(target=wait, name="ksa-storage-wait", daemon=True).start()
    return store


def _ready(store: Any) -> None:
    store.migrate()
    flush_spool(store)


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
