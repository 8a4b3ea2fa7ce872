"""Schema migrations: Alembic, run programmatically, safe when several processes race.

Every worker may call ``Store.migrate()`` at start-up at the same moment. The upgrade
runs in one transaction that first takes a lock the database itself arbitrates:
``pg_advisory_xact_lock`` on PostgreSQL, ``GET_LOCK`` on MySQL/MariaDB, the write lock
(``BEGIN IMMEDIATE``) on SQLite. Alembic reads the current revision only after that, so
the second process finds the schema at head and does nothing.

Alembic (~0.1 s to import, and its script directory imports every migration) is
imported only when the schema is not at head: a store already at head is told so by
one SELECT of the version table against the head read from the migration files' names
(``head_from_files``; a test holds it equal to Alembic's head). Every CLI command and
worker start that opens the store goes through here.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from .engine import WRITE
from .errors import MigrationError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

VERSION_TABLE = "ksa_alembic_version"
SCRIPT_LOCATION = "kubestack_ai.storage:migrations"
LOCK_NAME = "ksa_storage_migrate"
LOCK_KEY = 0x6B7361  # "ksa": the PostgreSQL advisory lock id
LOCK_TIMEOUT = 120  # seconds another process may hold the migration lock


VERSIONS = Path(__file__).parent / "migrations" / "versions"
_REVISION = re.compile(r"""^revision(?:\s*:\s*str)?\s*=\s*["']([^"']+)["']""", re.M)
_DOWN = re.compile(r"""^down_revision(?:\s*:[^=]+)?\s*=\s*(?:None|["']([^"']+)["'])\s*$""",
                   re.M)


@lru_cache(maxsize=1)
def head_from_files() -> str | None:
    """The head revision as the migration files declare it (``revision = "0004"``,
    ``down_revision = "0003"``), read without Alembic; None when it cannot tell (a
    merge, a branch, a file it cannot parse): the caller asks Alembic."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        if path.name == "__init__.py":
            continue
        src = path.read_text(encoding="utf-8")
        rev, down = _REVISION.search(src), _DOWN.search(src)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        if down.group(1):
            downs.add(down.group(1))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def at_head(engine: Engine) -> bool:
    """True when the version table says head (one SELECT, no Alembic import); False
    when it does not or cannot tell (no table yet, an older revision, a merge)."""
    target = head_from_files()
    if target is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    except SQLAlchemyError:
        return False
    return [r[0] for r in rows] == [target]


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(_config()).get_current_head()
    if rev is None:
        raise MigrationError("storage migrations have no head revision")
    return rev


def current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def upgrade(engine: Engine) -> bool:
    """Bring the schema to head. True when this call changed it."""
    if at_head(engine):
        return False
    from alembic import command

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
