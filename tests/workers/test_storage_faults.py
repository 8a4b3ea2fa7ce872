"""Storage faults under load: a batch of tasks through a real worker while its database
(a PostgreSQL server of the test's own) is up, stopped, hung (every process SIGSTOPped:
it accepts connections and never answers) and back, with a warm shutdown and restart of
the worker in the middle. Every task sent ends with exactly one stored run with its true
outcome, and the worker answers ``inspect ping`` throughout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import pgserver

from .conftest import RedisServer, Worker, client_app, require, worker_env

pytestmark = pytest.mark.timeout(150)


@pytest.fixture
def pg() -> Iterator[pgserver.PgServer]:
    require(pgserver.available(), "PostgreSQL server binaries (initdb, postgres)")
    server = pgserver.PgServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


class Pinger:
    """``inspect ping`` every second; counts the pings nobody answered."""

    def __init__(self, env: dict[str, str]) -> None:
        self.app = client_app(env)  # its own connections: the test's thread uses the other
        self.paused = threading.Event()
        self.stop = threading.Event()
        self.sent = 0
        self.missed: list[float] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            if not self.paused.is_set():
                t0 = time.monotonic()
                replies = self.app.control.ping(timeout=3.0, limit=1)
                if not self.paused.is_set():
                    self.sent += 1
                    if not replies:
                        self.missed.append(t0)
            self.stop.wait(1.0)


def _send(app: Any, behaviour: str, n: int, sent: dict[str, str], tag: str) -> list[Any]:
    out = []
    for i in range(n):
        target = {"name": f"{tag}-{i % 5}", "endpoints": ["127.0.0.1:1"],
                  "options": {"behaviour": behaviour}}
        r = app.send_task("diagnose.faulty", kwargs={"target": target, "force": True})
        sent[r.id] = behaviour
        out.append(r)
    return out


def _wait(results: list[Any], timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    out = []
    for r in results:
        out.append(r.get(timeout=max(0.1, deadline - time.monotonic()), propagate=False))
    return out


TRUE_OUTCOME = {"ok": "completed", "hang": "timed_out", "busy": "killed"}


def test_batch_through_storage_stopped_hung_restarted_and_a_warm_restart(
        pg: pgserver.PgServer, tmp_path: Path) -> None:
    from kubestack_ai.storage import Store

    broker = RedisServer(tmp_path)
    store = Store(pg.url)
    store.migrate()
    env = worker_env(tmp_path, KSA_BROKER_URL=broker.url, KSA_DATABASE_URL=pg.url,
                     KSA_STORAGE_TIMEOUT="2")
    app = client_app(env)
    sent: dict[str, str] = {}
    worker = Worker(tmp_path, env, concurrency=2, name="faults1")
    pinger = None
    second = None
    try:
        worker.wait_ready()
        pinger = Pinger(env)
        # up
        res = _wait(_send(app, "ok", 40, sent, "up"), 30)
        assert all(r["stored"] is True for r in res), res[:2]
        # stopped: connections refused
        pg.stop()
        batch = _send(app, "ok", 40, sent, "down") + _send(app, "hang", 2, sent, "downhang")
        res = _wait(batch, 40)
        assert all(r["outcome"] == "completed" and r["stored"] is None and r["storage_error"]
                   for r in res[:40]), res[:2]
        assert [r["outcome"] for r in res[40:]] == ["timed_out", "timed_out"]
        # hung: accepts, never answers; a task killed at the hard limit meanwhile
        pg.start()
        pg.hang()
        t0 = time.monotonic()
        batch = _send(app, "ok", 40, sent, "hung") + _send(app, "busy", 1, sent, "hungbusy")
        res = _wait(batch, 40)
        assert all(r["outcome"] == "completed" for r in res[:40]), res[:2]
        assert time.monotonic() - t0 < 30
        # warm shutdown while the database still hangs: it ends, in bounded time
        pinger.paused.set()
        t0 = time.monotonic()
        worker.stop()
        assert worker.proc.returncode == 0, worker.log.read_text()[-3000:]
        assert time.monotonic() - t0 < 20
        second = Worker(tmp_path, env, concurrency=2, name="faults2")
        second.wait_ready(timeout=40)
        pinger.paused.clear()
        res = _wait(_send(app, "ok", 40, sent, "hung2"), 40)
        assert all(r["outcome"] == "completed" for r in res), res[:2]
        # back: the runs kept meanwhile are written by the next runs
        pg.resume()
        res = _wait(_send(app, "ok", 40, sent, "back"), 40)
        assert all(r["outcome"] == "completed" for r in res), res[:2]
        pinger.paused.set()
        second.stop()  # warm shutdown: writes what is still spooled
        assert second.proc.returncode == 0
        assert not pinger.missed, f"{len(pinger.missed)} of {pinger.sent} pings unanswered"
        # one ping a second while not paused: at least a few per phase, however fast
        assert pinger.sent >= 5, f"only {pinger.sent} pings sent: the checks above saw too little"
    finally:
        if pinger is not None:
            pinger.stop.set()
            pinger.thread.join(timeout=5)
            pinger.app.close()
        pg.resume()
        for w in (worker, second):
            if w is not None:
                w.stop()
        app.close()

    from sqlalchemy import text

    with store.engine.connect() as c:
        rows = c.execute(text("SELECT run_id, outcome FROM ksa_run")).all()
    store.dispose()
    broker.close()
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids))
    outcomes = dict(rows)
    missing = set(sent) - set(outcomes)
    assert not missing, f"{len(missing)} of {len(sent)} runs never stored"
    assert set(outcomes) == set(sent)
    wrong = {k: (outcomes[k], TRUE_OUTCOME[b]) for k, b in sent.items()
             if outcomes[k] != TRUE_OUTCOME[b]}
    assert not wrong
    spool = tmp_path / "spool"
    assert not list(spool.glob("*.run.json")), "runs left in the spool"
