"""A server that accepts connections and never answers (every process of it stopped):
the diagnosis ends at its deadline (timed out, the framework's answer), and the next one
works once the server answers again. Its own cluster: the session's is shared by the other tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kubestack_ai.plugins import DiagnoseOptions, PluginManager, Status
from tests import pgserver
from tests.conftest import require
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import endpoint, target


@pytest.fixture()
def own() -> Iterator[PgServer]:
    require(pgserver.available(), "PostgreSQL binaries (initdb, postgres) not installed")
    srv = PgServer()
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def test_hung_server_is_a_finding_within_the_deadline(manager: PluginManager, own: PgServer) -> None:
    t = target(endpoint(own))
    assert manager.diagnose(t, DiagnoseOptions(categories=("connection",)), timeout=10).errors == {}
    own.hang()
    try:
        t0 = time.monotonic()
        r = manager.diagnose(t, DiagnoseOptions(categories=("connection",)), timeout=3)
        took = time.monotonic() - t0
        assert took < 5, took
        assert r.status == Status.UNKNOWN and r.outcome == "timed_out"
        assert r.errors == {"_run": "plugin 'postgres-diagnostics' diagnose: timed out after 3s"}
    finally:
        own.resume()
    r3 = manager.diagnose(t, DiagnoseOptions(categories=("connection",)), timeout=10)
    assert r3.errors == {} and r3.outcome == "completed", r3
