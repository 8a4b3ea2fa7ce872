"""Schema migrations: Alembic, run programmatically, safe when several processes race.

Every worker may call ``Store.migrate()`` at start-up at the same moment. The upgrade
runs in one transaction that first takes a lock the database itself arbitrates:
``pg_advisory_xact_lock`` on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB, the write lock
(``BEGIN IMMEDIATE``) on SQLite. Alembic reads the current revision only after that, so
the second process finds the schema at head and does nothing.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from .engine import WRITE
from .errors import MigrationError

log = logging.getLogger(__name__)

VERSION_TABLE = "ksa_alembic_version"
SCRIPT_LOCATION = "kubestack_ai.storage:migrations"
LOCK_NAME = "ksa_storage_migrate"
LOCK_KEY = 0x6B7361  # "ksa": the PostgreSQL advisory lock id
LOCK_TIMEOUT = 120  # seconds another process may hold the migration lock


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    rev = ScriptDirectory.from_config(_config()).get_current_head()
    if rev is None:
        raise MigrationError("storage migrations have no head revision")
    return rev


def current(connection: Connection) -> str | None:
    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head. True when this call changed it."""
    target = head()
    with engine.connect() as conn:
        if current(conn) == target:
            return False
    backend = engine.dialect.name
    opts: dict[str, object] = {WRITE: True}
    if backend in ("mysql", "mariadb"):
        # Read the version table as committed by whoever held the lock before us.
        opts["isolation_level"] = "READ COMMITTED"
    with engine.connect().execution_options(**opts) as conn:
        try:
            with conn.begin():
                _lock(conn, backend)
                before = current(conn)
                if before == target:
                    return False
                log.info("storage: upgrading schema %s -> %s", before or "(empty)", target)
                command.upgrade(_config(conn), "head")
        finally:
            # After the commit: MySQL's named lock belongs to the session, and releasing it
            # before the version row is committed would let the next process upgrade again.
            _unlock(conn, backend)
    return True


def _lock(conn: Connection, backend: str) -> None:
    if backend == "postgresql":
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}s'"))
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
    elif backend in ("mysql", "mariadb"):
        got = conn.execute(text("SELECT GET_LOCK(:n, :t)"),
                           {"n": LOCK_NAME, "t": LOCK_TIMEOUT}).scalar()
        if got != 1:
            raise MigrationError(
                f"another process held the migration lock {LOCK_NAME!r} for {LOCK_TIMEOUT}s")
    # SQLite: the connection's BEGIN IMMEDIATE already holds the database's write lock.


def _unlock(conn: Connection, backend: str) -> None:
    if backend in ("mysql", "mariadb"):
        try:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": LOCK_NAME})
        except SQLAlchemyError as e:  # the server frees it with the session anyway
            log.warning("storage: releasing the migration lock failed: %s", e)
