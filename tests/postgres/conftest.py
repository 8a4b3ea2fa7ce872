"""Fixtures of the postgres plugin's tests: one primary and one standby for the whole
session (each seeded fault lives in its own database or object, so tests share them),
stopped at the end; the shared server on 5432 only read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubestack_ai.plugins import PluginManager
from tests import pgserver
from tests.conftest import port_open, require
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import Standby, start_primary, wait_until


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    require(pgserver.available(), "PostgreSQL binaries (initdb, postgres) not installed")
    srv = start_primary()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="session")
def standby(pg: PgServer) -> Iterator[Standby]:
    sb = Standby(pg, "standby_1")
    try:
        sb.start()
        from tests.postgres.pg_helpers import sql
        wait_until(lambda: sql(pg, "SELECT count(*) FROM pg_stat_replication WHERE state = "
                               "'streaming'")[0][0][0] == 1, what="the standby to stream")
        yield sb
    finally:
        sb.close()


@pytest.fixture(scope="session")
def shared_pg() -> str:
    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    return "127.0.0.1:5432"


@pytest.fixture()
def manager() -> Iterator[PluginManager]:
    m = PluginManager()
    m.load_builtin("postgres-diagnostics")
    yield m
    m.stop_all()
