"""Every storage call a worker makes is bounded, against a PostgreSQL server of the
test's own that is hung (SIGSTOPped: it accepts connections and never answers), and a
soft time limit arriving during a storage call is still a soft limit."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import text

from kubestack_ai.plugins import DiagnosticResult, Status
from kubestack_ai.plugins.models import utcnow
from kubestack_ai.storage import Store
from kubestack_ai.storage.spool import Spool
from kubestack_ai.workers.store import SafeStore
from tests import pgserver
from tests.conftest import port_open, require

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pg() -> Iterator[pgserver.PgServer]:
    require(pgserver.available(), "PostgreSQL server binaries (initdb, postgres)")
    server = pgserver.PgServer()
    try:
        server.start()
        store = Store(server.url)
        store.migrate()
        store.dispose()
        yield server
    finally:
        server.close()


def result() -> DiagnosticResult:
    return DiagnosticResult(plugin_id="redis-diagnostics", target_name="t", status=Status.HEALTHY,
                            started_at=utcnow(), duration=0.1)


def test_a_hung_database_costs_one_time_out_then_nothing_until_the_back_off(
        pg: pgserver.PgServer, tmp_path: Path) -> None:
    safe = SafeStore(pg.url, spool=tmp_path, timeout=1.0)
    assert safe.call("ping", lambda s: s.list_plugin_states()) == ([], None)
    pg.hang()
    try:
        t0 = time.monotonic()
        value, err = safe.call("list_plugin_states", lambda s: s.list_plugin_states())
        took = time.monotonic() - t0
        assert value is None and err is not None and "no answer within 1 s" in err
        assert took < 1.8
        t0 = time.monotonic()
        stored, err = safe.record_run("bounded-1", "redis:t", "redis-diagnostics", (), result(), 60)
        assert stored is None and "down, next try in" in (err or "")
        assert time.monotonic() - t0 < 0.3  # no second wait while storage is known down
        assert Spool(tmp_path).run_ids() == ["bounded-1"]
    finally:
        pg.resume()
    time.sleep(1.1)  # the back-off
    stored, err = safe.record_run("bounded-2", "redis:t", "redis-diagnostics", (), result(), 60)
    assert (stored, err) == (True, None)
    store = Store(pg.url)
    assert store.get_run("bounded-1") is not None  # flushed first
    assert len(Spool(tmp_path)) == 0
    store.dispose()
    safe.dispose()


def test_a_soft_limit_during_a_storage_call_is_still_a_soft_limit(
        pg: pgserver.PgServer, tmp_path: Path) -> None:
    # billiard delivers the soft limit as a signal whose handler raises
    # SoftTimeLimitExceeded in the task's thread: the same here, with SIGALRM
    def soft_limit(signum: int, frame: FrameType | None) -> None:
        raise SoftTimeLimitExceeded()

    old = signal.signal(signal.SIGALRM, soft_limit)
    safe = SafeStore(pg.url, spool=tmp_path, timeout=10.0)
    assert safe.call("ping", lambda s: s.list_plugin_states())[1] is None
    pg.hang()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        t0 = time.monotonic()
        with pytest.raises(SoftTimeLimitExceeded):
            safe.call("snapshots", lambda s: s.snapshots("redis:t", "redis-diagnostics"))
        assert time.monotonic() - t0 < 1.0
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        stored, err = safe.record_run("soft-1", "redis:t", "redis-diagnostics", (), result(), 60)
        assert stored is None and err is not None and "soft time limit" in err
        assert Spool(tmp_path).run_ids() == ["soft-1"]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        pg.resume()
    # the interrupted call goes on in its thread and ends once the server answers
    assert safe.call("after", lambda s: s.list_plugin_states())[1] is None
    safe.dispose()


def test_engines_bound_connect_and_statements_per_backend(pg: pgserver.PgServer,
                                                          tmp_path: Path) -> None:
    pgs = Store(pg.url, timeout=2)
    with pgs.engine.connect() as c:
        assert c.execute(text("SHOW statement_timeout")).scalar() == "2s"
        assert c.execute(text("SHOW lock_timeout")).scalar() == "2s"
    pgs.dispose()
    sq = Store(f"sqlite:///{tmp_path / 'k.db'}", timeout=2)
    with sq.engine.connect() as c:
        assert c.execute(text("PRAGMA busy_timeout")).scalar() == 2000
    sq.dispose()
    if port_open("127.0.0.1", 3306):
        my = Store("mysql+pymysql://root@127.0.0.1:3306/test", timeout=2)
        with my.engine.connect() as c:
            assert float(c.execute(text("SELECT @@max_statement_time")).scalar()) == 2.0
        my.dispose()
    # a server that accepts and never answers: connecting gives up at connect_timeout
    pg.hang()
    try:
        fresh = Store(pg.url, timeout=2)
        t0 = time.monotonic()
        with pytest.raises(Exception, match="unavailable"):
            fresh.list_plugin_states()
        assert time.monotonic() - t0 < 5
    finally:
        pg.resume()
    fresh.dispose()
