"""``ksa.retention`` on a server database (the machine's PostgreSQL): a prune takes as
long as its work, not the few seconds a diagnosis's storage call may wait. Here it waits
on a row another transaction holds for 4 s, with KSA_STORAGE_TIMEOUT=1: it must finish,
not be abandoned mid-prune."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from kubestack_ai.plugins.models import DiagnosticResult, Status
from kubestack_ai.storage import Store
from tests.conftest import port_open

from .conftest import RedisServer, Worker, client_app, require, worker_env

pytestmark = pytest.mark.timeout(90)

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    name = f"ksa_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _result(at: dt.datetime) -> DiagnosticResult:
    return DiagnosticResult(plugin_id="redis-diagnostics", plugin_version="1.0.0",
                            target_name="r", status=Status.WARNING, started_at=at,
                            duration=0.1, outcome="completed")


def test_retention_on_postgresql_waits_for_its_work_not_the_storage_timeout(
        pg_url: str, tmp_path: Path) -> None:
    store = Store(pg_url)
    store.migrate()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=20)
    for i in range(3):
        store.record_run(f"old-{i}", "redis:ret", "redis-diagnostics", (),
                         _result(old + dt.timedelta(minutes=i)), ttl=None)
    broker = RedisServer(tmp_path)
    w = Worker(tmp_path, worker_env(tmp_path, KSA_BROKER_URL=broker.url,
                                    KSA_DATABASE_URL=pg_url, KSA_STORAGE_TIMEOUT="1"))
    app: Any = None
    locker = create_engine(pg_url)
    try:
        w.wait_ready()
        app = client_app(w.env)
        held = threading.Event()

        def hold() -> None:  # a writer holding one of the old rows for 4 s
            with locker.begin() as c:
                c.execute(text("SELECT id FROM ksa_run WHERE run_id = 'old-1' FOR UPDATE"))
                held.set()
                time.sleep(4)

        t = threading.Thread(target=hold)
        t.start()
        assert held.wait(10)
        t0 = time.monotonic()
        out = app.send_task("ksa.retention").get(timeout=60)
        took = time.monotonic() - t0
        t.join()
        assert out == {"runs": 3, "audit": 0, "adhoc": 0, "storage_error": None}, w.log.read_text()[-2000:]
        assert took > 3  # it did wait on the lock
        assert store.history("redis:ret") == []
        [day] = store.rollups("redis:ret")
        assert day.runs == 3
    finally:
        if app is not None:
            app.close()
        w.stop()
        broker.close()
        locker.dispose()
        store.dispose()
