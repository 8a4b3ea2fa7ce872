"""The store's plumbing: one engine per process, short transactions, error translation
(``Database``); ``Part``, the base of the collaborators that run their queries on it."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from kubestack_ai.plugins.logcontext import get_logger

from . import migrate as _migrate
from .engine import WRITE, default_url, make_engine, mask, parse_url
from .errors import MigrationError, SchemaMissing, StorageError, StorageUnavailable
from .models import KEY_LEN

log = get_logger(__name__)

T = TypeVar("T")

# Lock conflicts a retry resolves: MySQL deadlock / lock wait timeout, PostgreSQL
# deadlock / serialization failure, SQLite busy past the timeout.
_MYSQL_RETRY = {1213, 1205}
_PG_RETRY = {"40P01", "40001"}
_ATTEMPTS = 4


_STORES: weakref.WeakSet[Database] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held a store's lock at the fork: the child's copy
    # would stay locked forever. The child has only this thread; start it unlocked.
    for store in list(_STORES):
        store._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def short_key(key: str, limit: int = KEY_LEN) -> str:
    """``key`` if it fits the key columns, else a prefix plus its SHA-256 (still unique)."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: limit - len(digest) - 1]}#{digest}"


def categories_key(categories: Iterable[str]) -> str:
    """Order-insensitive key of a category set; ``""`` means every category."""
    return short_key(",".join(sorted(set(categories))))


class Database:
    """URL, engine and transactions of one ``Store``: its collaborators run every query
    through ``tx`` or ``core``."""

    def __init__(self, url: str | None = None, *, timeout: float = 10.0,
                 busy_timeout: float | None = None, echo: bool = False) -> None:
        self.url = parse_url(url if url is not None else default_url())
        self.masked_url = mask(self.url)
        self.timeout = timeout
        self._busy_timeout = busy_timeout
        self._echo = echo
        self._engines: tuple[Engine, Engine] | None = None
        self._pid = 0
        self._lock = threading.Lock()
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"Database({self.masked_url!r})"

    # -- engine, per process ------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """This process's engine. A forked child never uses the parent's pooled
        connections (two processes on one socket corrupt both): it makes its own."""
        return self._binds()[0]

    def _binds(self) -> tuple[Engine, Engine]:
        """(engine, the same engine for write transactions) of this process."""
        pid = os.getpid()
        binds = self._engines
        if binds is not None and self._pid == pid:
            return binds
        with self._lock:
            if self._engines is not None and self._pid != pid:
                # Inherited through fork: forget the parent's connections without closing
                # them, which would close them under the parent too.
                self._engines[0].dispose(close=False)
                self._engines = None
            if self._engines is None:
                engine = make_engine(self.url, timeout=self.timeout,
                                     busy_timeout=self._busy_timeout, echo=self._echo)
                self._engines = (engine, engine.execution_options(**{WRITE: True}))
                self._pid = pid
                log.debug("storage: engine for %s in pid %d", self.masked_url, pid)
            return self._engines

    def dispose(self) -> None:
        """Drop pooled connections; the next call reconnects. Call it in a forked child
        (the engine also notices a pid change by itself)."""
        with self._lock:
            if self._engines is not None:
                self._engines[0].dispose(close=self._pid == os.getpid())
                self._engines = None

    def dispose_abandoned(self) -> Engine | None:
        """Forget the engine without touching its connections: a call hung on one of them
        (a server that stopped answering) keeps it; the next call makes a new engine.
        Returns the old engine, for the hung call's thread to dispose of once it ends."""
        with self._lock:
            old = None
            if self._engines is not None and self._pid == os.getpid():
                old = self._engines[0]
            self._engines = None
            return old

    def migrate(self) -> bool:
        """Create or upgrade the schema to the latest revision. Idempotent and safe when
        several processes call it at once. True when this call changed the schema."""
        # SQLite can answer "database is locked" without waiting its busy timeout (a
        # connection switching a new file to WAL while another migrates): retried like
        # any lock conflict, with more attempts since every process starts here at once.
        return self._retry(lambda _bind: _migrate.upgrade(self.engine), True, (MigrationError,),
                           False, "migrate", attempts=8)

    def schema_revision(self) -> str | None:
        """The schema revision the database is at (None: no schema yet)."""
        def fn(s: Session) -> str | None:
            return _migrate.current(s.connection())
        return self.tx(fn)

    # -- transactions -------------------------------------------------------------------

    def tx(self, fn: Callable[[Session], T], *, write: bool = False,
            passthrough: tuple[type[Exception], ...] = (),
            retry_integrity: bool = False, what: str = "query") -> T:
        """Run ``fn(session)`` in one short ORM transaction (see ``_retry``)."""
        def once(bind: Engine) -> T:
            with Session(bind, expire_on_commit=False) as s, s.begin():
                return fn(s)
        return self._retry(once, write, passthrough, retry_integrity, what)

    def core(self, fn: Callable[[Connection], T], *, write: bool = False,
              passthrough: tuple[type[Exception], ...] = (),
              retry_integrity: bool = False, what: str = "query") -> T:
        """Run ``fn(connection)`` in one short Core transaction: the hot paths (record_run,
        cached_result) skip the ORM session's bookkeeping."""
        def once(bind: Engine) -> T:
            with bind.begin() as c:
                return fn(c)
        return self._retry(once, write, passthrough, retry_integrity, what)

    def _retry(self, once: Callable[[Engine], T], write: bool,
               passthrough: tuple[type[Exception], ...], retry_integrity: bool,
               what: str, attempts: int = _ATTEMPTS) -> T:
        """Retry lock conflicts; errors become StorageError / StorageUnavailable, except
        the ``passthrough`` ones."""
        bind = self._binds()[1 if write else 0]
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                return once(bind)
            except passthrough:
                raise
            except IntegrityError as e:
                # Two processes inserted the same new key at once: the retry finds the row.
                if retry_integrity and not last:
                    continue
                raise self._translate(e, what) from e
            except DBAPIError as e:
                if _retryable(e) and not last:
                    log.info("storage: %s: lock conflict on %s, retrying (%d)",
                             what, self.masked_url, attempt + 1)
                    time.sleep(0.02 * 2 ** attempt)
                    continue
                raise self._translate(e, what) from e
            except SQLAlchemyError as e:
                raise self._translate(e, what) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, e: SQLAlchemyError, what: str) -> StorageError:
        reason = _reason(e, self.url.password)
        if isinstance(e, PoolTimeout) or (
                isinstance(e, DBAPIError) and (e.connection_invalidated or _is_unavailable(e))):
            return StorageUnavailable(
                f"storage database {self.masked_url} is unavailable ({what}): {reason}")
        if "no such table" in reason or "does not exist" in reason or "doesn't exist" in reason:
            return SchemaMissing(f"storage database {self.masked_url} has no schema ({what}): "
                                f"{reason}; run Store.migrate()")
        return StorageError(f"storage database {self.masked_url}: {what} failed: {reason}")


class Part:
    """A collaborator of ``Store``: owns one table family and runs its queries on the
    store's ``Database`` (``_tx``: an ORM session, ``_core``: a Core connection)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._tx = db.tx
        self._core = db.core


def _reason(e: SQLAlchemyError, password: str | None) -> str:
    orig = getattr(e, "orig", None)
    text = str(orig if orig is not None else e).strip().splitlines()
    reason = text[0] if text else type(e).__name__
    if password:
        reason = reason.replace(password, "***")
    return reason


def _code(e: DBAPIError) -> object:
    orig = e.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        return sqlstate
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _retryable(e: DBAPIError) -> bool:
    code = _code(e)
    if code in _MYSQL_RETRY or code in _PG_RETRY:
        return True
    return "database is locked" in str(e.orig)


def _is_unavailable(e: DBAPIError) -> bool:
    """Cannot reach or use the server at all (vs. a bad statement)."""
    if isinstance(e, InterfaceError):
        return True
    if not isinstance(e, OperationalError):
        return False
    reason = str(e.orig)
    if "no such table" in reason:  # SQLite reports a missing schema as OperationalError
        return False
    return True
