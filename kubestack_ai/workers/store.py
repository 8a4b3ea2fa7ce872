"""Storage as the workers use it: every call bounded in time, none may crash a diagnosis.

On a database server each call runs in a helper thread and is waited for at most
``timeout`` seconds (well under the task's soft limit): a database that accepts
connections and never answers (SIGSTOPped, a dead proxy) costs a task that long, once,
never its time limit. A call that did not answer is abandoned (its thread and connection
are left to finish or die with the process; the engine is replaced) and storage is then
considered down for a short, growing back-off, during which calls fail at once instead
of waiting again. Waiting on a thread (not inside the driver) also keeps Celery's soft
limit clean: it is raised in the task's thread while it waits, never inside
SQLAlchemy's state machine. On SQLite (a local file, which cannot stop answering like a
server) the call runs in the task's thread, bounded by SQLite's busy timeout (the same
``timeout``).

A run that cannot be written is spooled on local disk (``$KSA_HOME/spool``, see
storage/spool.py) and written, idempotently by task id, by the next run of any worker
child, by a worker starting or shutting down warm, and by ``ksa`` commands that open
the store. A run the database refuses for another reason (a value it cannot store) is
set aside with its task id, never retried for ever, never blocking the others.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded

from kubestack_ai.plugins import DiagnosticResult
from kubestack_ai.plugins.logcontext import get_logger

# imported here, in the worker's main process, so forked children inherit it instead
# of paying for SQLAlchemy's import inside their first task's time limit
from kubestack_ai.storage import StorageError, StorageUnavailable, Store
from kubestack_ai.storage.engine import default_url, parse_url
from kubestack_ai.storage.spool import FlushReport, Spool, Spooled, SpooledRun

log = get_logger(__name__)
T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
"""Seconds one storage call may take (KSA_STORAGE_TIMEOUT)."""

BACKOFF_MIN, BACKOFF_MAX = 1.0, 15.0
"""Seconds storage is left alone after a failure, doubling while it keeps failing."""


class StorageTimeout(StorageUnavailable):
    """A storage call did not answer within its time-out."""


class _Job:
    __slots__ = ("done", "error", "fn", "value")

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class _Runner:
    """One daemon thread running storage calls one at a time. Abandoned when a call hangs
    (a daemon thread never holds the process's exit)."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self.busy = False
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._loop, name="ksa-storage", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while (job := self.jobs.get()) is not None:
            try:
                job.value = job.fn()
            except BaseException as e:  # noqa: BLE001 (handed to the caller's thread)
                job.error = e
            finally:
                job.done.set()

    def abandon(self, cleanup: Callable[[], Any] | None = None) -> None:
        """After the call it is stuck in (if it ever ends): ``cleanup``, then exit."""
        if cleanup is not None:
            self.jobs.put(_Job(cleanup))
        self.jobs.put(None)


class SafeStore:
    """Wraps ``storage.Store``: each call returns (value, error message or None)."""

    def __init__(self, url: str | None = None, *, spool: Spool | str | Path | None = None,
                 timeout: float = DEFAULT_TIMEOUT, migrate: bool = False) -> None:
        # only the worker's main process migrates (once, at start): a child doing it on
        # its first task would spend its soft time limit on it
        self._url = url
        self._migrate = migrate
        self.timeout = timeout
        self.spool = spool if isinstance(spool, Spool) or spool is None else Spool(spool)
        self._store: Any = None
        self._lock = threading.Lock()
        self._runner: _Runner | None = None
        self._down_until = 0.0
        self._backoff = BACKOFF_MIN
        self._is_local: bool | None = None

    # -- the bounded call -----------------------------------------------------------------

    def _get(self) -> Any:
        with self._lock:
            if self._store is None:
                store = Store(self._url, timeout=self.timeout)
                if self._migrate:
                    store.migrate()
                self._store = store
            return self._store

    def _local(self) -> bool:
        """SQLite: a file, bounded by its busy timeout, that cannot hang like a server
        that stopped answering; called in the task's thread (no hand-off)."""
        if self._is_local is None:
            self._is_local = parse_url(self._url or default_url()).get_backend_name() == "sqlite"
        return self._is_local

    def _bounded(self, fn: Callable[[Any], T], timeout: float) -> T:
        if self._local():
            try:
                return fn(self._get())
            except Exception as e:
                if _interrupted(e):  # raised inside SQLAlchemy, which wrapped it
                    raise SoftTimeLimitExceeded() from e
                raise
        runner = self._runner
        if runner is None or runner.busy or runner.pid != os.getpid():
            # a fresh child (threads do not survive fork), or the last call still hangs
            runner = self._runner = _Runner()
        job = _Job(lambda: fn(self._get()))
        runner.busy = True
        runner.jobs.put(job)
        try:
            answered = job.done.wait(timeout)
        except BaseException:
            # the soft time limit, raised in this thread while it waited: the call goes on
            # in the runner, which is left to it like a hung one
            answered = False
            raise
        finally:
            if not answered:
                runner.abandon(self._drop_engine())
                self._runner = None
        if not answered:
            raise StorageTimeout(f"no answer within {timeout:g} s")
        runner.busy = False
        if job.error is not None:
            raise job.error
        return job.value  # type: ignore[no-any-return]

    def _drop_engine(self) -> Callable[[], Any] | None:
        """Later calls get a new engine and pool; the hung call keeps its connection, and
        its thread closes the old engine if the call ever ends."""
        store = self._store
        old = store.dispose_abandoned() if store is not None else None
        return old.dispose if old is not None else None

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self) -> None:
        self._down_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    def _try(self, what: str, fn: Callable[[Any], T], timeout: float | None = None) -> T:
        """The call, bounded; raises StorageUnavailable without trying while in back-off."""
        if not self.available():
            raise StorageUnavailable(
                f"down, next try in {self._down_until - time.monotonic():.1f} s")
        try:
            value = self._bounded(fn, self.timeout if timeout is None else timeout)
        except StorageUnavailable:
            self._failed()
            raise
        self._backoff = BACKOFF_MIN
        return value

    def call(self, what: str, fn: Callable[[Any], T],
             timeout: float | None = None) -> tuple[T | None, str | None]:
        try:
            return self._try(what, fn, timeout), None
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: not a storage failure
        except StorageError as e:
            msg = f"storage unavailable during {what}: {type(e).__name__}: {e}"
        except Exception as e:  # storage broken (not a StorageError): reported, never raised
            msg = f"storage unavailable during {what}: {type(e).__name__}: {e}"
        log.warning("%s", msg)
        return None, msg

    def store(self) -> Store:
        """The Store itself, for a caller that must see its errors (the audit log: an
        action whose attempt cannot be written is not run). Opening it does no I/O."""
        return self._get()  # type: ignore[no-any-return]

    def dispose(self) -> None:
        """Drop pooled connections inherited through fork (never closes the parent's)."""
        # a thread of the parent (a call hung at fork) may have held the lock: the child
        # has no such thread, so it starts unlocked
        self._lock = threading.Lock()
        self._runner = None
        if self._store is not None:
            try:
                self._store.dispose()
            except Exception:  # a failing dispose must not kill a fresh child
                log.exception("storage dispose failed")

    def close(self) -> None:
        """Stop the runner thread (when idle) and close the pool: a store made for one
        call (the retention task's)."""
        runner, self._runner = self._runner, None
        if runner is not None and not runner.busy and runner.pid == os.getpid():
            runner.abandon()
        if self._store is not None:
            self._store.dispose()

    # -- runs -----------------------------------------------------------------------------

    def record_run(self, run_id: str, target_key: str, plugin_id: str,
                   categories: tuple[str, ...], result: DiagnosticResult,
                   ttl: float | None) -> tuple[bool | None, str | None]:
        """Write this run (first the ones kept from an outage). (written?, error).

        A task that completes after being redelivered replaces the ``killed`` or
        ``failed`` run stored under its id (``supersede_failed``)."""
        run = SpooledRun(run_id, target_key, plugin_id, categories, result, ttl)
        self.flush()
        try:
            return self._try("record_run", run.record), None
        except SoftTimeLimitExceeded:
            # the run is over: keep it and let the task answer (the write may still land;
            # the spooled copy is then a harmless duplicate)
            kept = self.keep(run)
            return None, ("stopped at the soft time limit while storing: run "
                          + ("kept in the spool" if kept else "lost"))
        except StorageUnavailable as e:
            err = f"storage unavailable during record_run: {type(e).__name__}: {e}"
            if self.keep(run, err):  # a lost run is logged (once) by keep
                log.warning("task %s: %s; run kept in the spool", run_id, err)
            return None, err
        except StorageError as e:
            # not connectivity: retrying will not help, and it must not block others
            err = f"run not stored: {e}"
            log.error("task %s: %s", run_id, err)
            if self.spool is not None:
                self.spool.set_aside(run, str(e))
            return False, err

    def keep(self, run: Spooled, why: str = "") -> bool:
        """Spool a run (or an action's end) for later (local disk only: safe in any
        process, any path). False when it is lost (logged once, and counted)."""
        if self.spool is None:
            log.error("task %s: run lost: storage unavailable and no spool", run.run_id)
            return False
        try:
            self.spool.put(run)
        except OSError as e:
            self.spool.lose(run.run_id, f"cannot spool it: {e.strerror or e}"
                                        + (f" ({why})" if why else ""))
            return False
        return True

    def flush(self, budget: float | None = None) -> FlushReport | None:
        """Write the spooled runs, within ``budget`` seconds (default: one time-out)."""
        if self.spool is None or not self.available() or not len(self.spool):
            return None
        report = self.spool.flush(lambda r: self._try("record_run (kept)", r.record),
                                  budget=self.timeout if budget is None else budget)
        return report




def _interrupted(e: BaseException) -> bool:
    """A soft time limit somewhere in the exception's chain."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, SoftTimeLimitExceeded):
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False
