"""Storage fixtures: the suite runs once per backend.

- sqlite: a file in a temp dir;
- postgresql: the machine's server (127.0.0.1:5432, trust auth), a database of our own
  per session, dropped at the end;
- mariadb: the machine's server (127.0.0.1:3306, root), a database of our own per
  session, dropped at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from kubestack_ai.storage import Store
from tests.conftest import port_open, require

from .storage_factories import finding, result

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MY_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"
BACKENDS = ["sqlite", "postgresql", "mariadb"]
TABLES = ("ksa_audit", "ksa_run", "ksa_result_cache", "ksa_plugin_state", "ksa_rollup_daily",
          "ksa_target_latest", "ksa_fleet_member")


class Databases:
    """Creates throw-away databases on one backend and drops them all at the end."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.tmp = tmp
        self.created: list[str] = []

    def new_url(self) -> str:
        name = f"ksa_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp / (name + '.db')}"
        admin = PG_ADMIN if self.backend == "postgresql" else MY_ADMIN
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                c.execute(text(f"CREATE DATABASE {name}"))
        finally:
            engine.dispose()
        self.created.append(name)
        return admin.rsplit("/", 1)[0] + "/" + name

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = PG_ADMIN if self.backend == "postgresql" else MY_ADMIN
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as c:
                for name in self.created:
                    force = " WITH (FORCE)" if self.backend == "postgresql" else ""
                    c.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        finally:
            engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def databases(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    yield from _databases(request.param, tmp_path_factory)


@pytest.fixture(scope="session", params=["postgresql", "mariadb"])
def server_databases(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """The backends that are a server one can lose."""
    yield from _databases(request.param, tmp_path_factory)


def _databases(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    if backend == "postgresql":
        require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    elif backend == "mariadb":
        require(port_open("127.0.0.1", 3306), "MariaDB on 127.0.0.1:3306")
    dbs = Databases(backend, tmp_path_factory.mktemp(f"storage-{backend}"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def migrated(databases: Databases) -> Iterator[Store]:
    store = Store(databases.new_url())
    store.migrate()
    yield store
    store.dispose()


@pytest.fixture
def store(migrated: Store) -> Store:
    """The session's store, emptied before each test."""
    with migrated.engine.begin() as c:
        for table in TABLES:
            c.execute(text(f"DELETE FROM {table}"))
    return migrated


@pytest.fixture
def make_result() -> object:
    return result


@pytest.fixture
def make_finding() -> object:
    return finding
