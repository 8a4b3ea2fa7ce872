"""Storage as the workers use it: every call may fail, none may crash a diagnosis.

When the database cannot be reached the diagnosis still completes and says so in its
task result (``storage_error``); runs that could not be written are kept (bounded) and
written, idempotently by task id, once the database answers again.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded

from kubestack_ai.plugins import DiagnosticResult

# imported here, in the worker's main process, so forked children inherit it instead
# of paying for SQLAlchemy's import inside their first task's time limit
from kubestack_ai.storage import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

PENDING_MAX = 1000
"""Runs kept in memory while storage is down; the oldest are dropped (and logged)."""


class SafeStore:
    """Wraps ``storage.Store``: each call returns (value, error message or None)."""

    def __init__(self, url: str | None = None, *, migrate: bool = False) -> None:
        # only the worker's main process migrates (once, at start): a child doing it on
        # its first task would spend its soft time limit on it
        self._url = url
        self._migrate = migrate
        self._store: Any = None
        self._lock = threading.Lock()
        self.pending: collections.deque[tuple[Any, ...]] = collections.deque()

    def _get(self) -> Any:
        with self._lock:
            if self._store is None:
                store = Store(self._url)
                if self._migrate:
                    store.migrate()
                self._store = store
            return self._store

    def store(self) -> Store:
        """The Store itself, for a caller that must see its errors (the audit log: an
        action whose attempt cannot be written is not run). Opening it does no I/O."""
        return self._get()  # type: ignore[no-any-return]

    def dispose(self) -> None:
        """Drop pooled connections inherited through fork (never closes the parent's)."""
        if self._store is not None:
            try:
                self._store.dispose()
            except Exception:  # a failing dispose must not kill a fresh child
                log.exception("storage dispose failed")

    def call(self, what: str, fn: Callable[[Any], T]) -> tuple[T | None, str | None]:
        try:
            return fn(self._get()), None
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: not a storage failure
        except Exception as e:  # storage down or broken: reported, never raised
            msg = f"storage unavailable during {what}: {type(e).__name__}: {e}"
            log.warning("%s", msg)
            return None, msg

    def record_run(self, run_id: str, target_key: str, plugin_id: str,
                   categories: tuple[str, ...], result: DiagnosticResult,
                   ttl: float | None) -> tuple[bool | None, str | None]:
        """Write this run and any kept from an outage. (written?, error)."""
        item = (run_id, target_key, plugin_id, categories, result, ttl)
        if self.pending:
            self.flush()
        stored, err = self.call("record_run", lambda s: s.record_run(*item))
        if err is not None:
            if len(self.pending) >= PENDING_MAX:
                dropped = self.pending.popleft()
                log.error("storage down: run %s dropped, %d runs kept", dropped[0], PENDING_MAX)
            self.pending.append(item)
        return stored, err

    def flush(self) -> int:
        """Write kept runs, oldest first; stop at the first failure."""
        n = 0
        while self.pending:
            item = self.pending[0]
            _, err = self.call("record_run (kept)", _recorder(item))
            if err is not None:
                break
            self.pending.popleft()
            n += 1
        if n:
            log.info("storage back: wrote %d kept runs", n)
        return n


def _recorder(item: tuple[Any, ...]) -> Callable[[Any], Any]:
    return lambda s: s.record_run(*item)
