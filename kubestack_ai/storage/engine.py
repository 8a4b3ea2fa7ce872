"""Database URLs and engines: defaults, masking, SQLite set up for several processes.

SQLite is the default and several Celery worker processes write to it at once, so every
connection runs in WAL mode (readers never block the writer) with a busy timeout (a
writer waits for the lock instead of failing), and write transactions start with
``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail at once
with "database is locked" when another process committed in between, whatever the
busy timeout; taking the write lock up front makes it wait its turn instead.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import StorageError, StorageUnavailable

log = logging.getLogger(__name__)

ENV_URL = "KSA_DATABASE_URL"
ENV_HOME = "KSA_HOME"
WRITE = "ksa_write"
"""Execution option on a connection whose transaction will write (SQLite: BEGIN IMMEDIATE)."""

# A URL without a driver gets the one this project ships (or tests with), not
# SQLAlchemy's default (mysqlclient, psycopg2), which is not installed.
_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql",
            "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


SUPPORTED = ("sqlite", "postgresql", "mysql", "mariadb")
"""Backends the store runs on (the result cache's atomic upsert is written for each)."""


def default_url(environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get(ENV_URL):
        return env[ENV_URL]
    home = Path(env.get(ENV_HOME) or Path.home() / ".ksa").expanduser()
    return f"sqlite:///{home / 'ksa.db'}"


def parse_url(url: str) -> URL:
    try:
        u = make_url(url)
    except ArgumentError as e:
        # The text may be a mistyped URL holding a password: do not echo it whole.
        raise StorageError(f"not a database URL: {mask_text(url)!r} ({type(e).__name__})") from None
    if u.get_backend_name() not in SUPPORTED:
        raise StorageError(f"unsupported database {u.get_backend_name()!r} ({mask(u)}): "
                           "KubeStack AI stores in SQLite, PostgreSQL, MySQL or MariaDB")
    if u.drivername in _DRIVERS:
        u = u.set(drivername=_DRIVERS[u.drivername])
    if u.get_backend_name() in ("mysql", "mariadb") and "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    return u


def mask(url: URL) -> str:
    """The URL as text with the password replaced by ``***``."""
    return url.render_as_string(hide_password=True)


def mask_text(text: str) -> str:
    """Mask ``user:password@`` in free text that looks like a URL."""
    return re.sub(r"(//[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def sqlite_path(url: URL) -> Path | None:
    db = url.database
    if url.get_backend_name() != "sqlite" or not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db)


def make_engine(url: URL, *, timeout: float = 10.0, busy_timeout: float | None = None,
                echo: bool = False) -> Engine:
    """An engine whose every wait is bounded by about ``timeout`` seconds: connecting
    (``connect_timeout``), checking a connection out of the pool (``pool_timeout``) and
    each statement (PostgreSQL ``statement_timeout``/``lock_timeout``; MariaDB
    ``max_statement_time``, MySQL ``max_execution_time`` and the client's socket read and
    write time-outs; SQLite's busy timeout, ``busy_timeout`` when given). A server that
    accepts connections and never answers is still only bounded by the client where the
    driver has a socket time-out (PyMySQL); the workers bound every call themselves too
    (see workers/store.py)."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "echo": echo,
                              "pool_timeout": timeout}
    backend = url.get_backend_name()
    connect = max(1, int(min(timeout, 5.0)))
    if backend == "sqlite":
        # A file has no server that can drop the connection: no ping before each use.
        kwargs["pool_pre_ping"] = False
        path = sqlite_path(url)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageUnavailable(
                    f"storage database {mask(url)} is unavailable: cannot create "
                    f"{path.parent}: {e.strerror}") from None
        busy = timeout if busy_timeout is None else busy_timeout
        kwargs["connect_args"] = {"timeout": busy}
    else:
        # Recycle before common server/proxy idle timeouts; pre_ping catches the rest.
        kwargs["pool_recycle"] = 1800
        ms = int(timeout * 1000)
        if backend == "postgresql":
            kwargs["connect_args"] = {
                "connect_timeout": connect,
                "options": f"-c statement_timeout={ms} -c lock_timeout={ms}"}
        elif backend in ("mysql", "mariadb"):
            # the socket time-outs bound a server that stopped answering; the server-side
            # statement limit (set per connection below) a statement that runs too long
            kwargs["connect_args"] = {"connect_timeout": connect,
                                      "read_timeout": max(1, int(timeout) + 1),
                                      "write_timeout": max(1, int(timeout) + 1)}
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        _sqlite_setup(engine, timeout if busy_timeout is None else busy_timeout)
    elif backend in ("mysql", "mariadb"):
        _mysql_setup(engine, timeout)
    return engine


def _mysql_setup(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        server = str(dbapi_conn.get_server_info())
        cur = dbapi_conn.cursor()
        try:
            if "MariaDB" in server:
                cur.execute(f"SET SESSION max_statement_time = {timeout:.3f}")
            else:  # MySQL: SELECTs only, in milliseconds
                cur.execute(f"SET SESSION max_execution_time = {int(timeout * 1000)}")
            cur.execute(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(timeout))}")
        finally:
            cur.close()


def _sqlite_setup(engine: Engine, busy_timeout: float) -> None:
    memory = sqlite_path(engine.url) is None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        # We issue BEGIN ourselves (below); the driver's own implicit BEGIN would be DEFERRED.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not memory:
                cur.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL is durable against application crashes; only a power
                # loss can drop the last commits. The results are re-creatable.
                cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Reads run without BEGIN: each of our reads is one statement, which SQLite runs
        # on one consistent snapshot by itself; two round trips saved on the hot path.
        if conn.get_execution_options().get(WRITE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
