"""Storage (PostgreSQL, through a proxy the test can cut) unreachable for a while:
diagnoses still complete and say so, the worker survives, and storage resumes,
writing the runs it kept during the outage."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    BROKER_OWN,
    Worker,
    client_app,
    flush_db11,
    port_open,
    require,
    worker_env,
)

pytestmark = pytest.mark.timeout(90)

BROKER12 = BROKER_OWN
DB = "ksa_workers_test"


class Proxy:
    """A TCP proxy to PostgreSQL that can refuse and drop every connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.port = self.lsock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self._listen()

    def _listen(self) -> None:
        self.lsock.listen(64)
        self.thread = threading.Thread(target=self._accept, args=(self.lsock,), daemon=True)
        self.thread.start()

    def _accept(self, lsock: socket.socket) -> None:
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return
            u = socket.create_connection(self.upstream)
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone would leave the
        # kernel socket listening under it
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        self.thread.join(timeout=5)
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns.clear()

    def up(self) -> None:
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", self.port))
        self._listen()

    def close(self) -> None:
        self.down()


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                    "-qc", sql], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pg_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Proxy, Any]]:
    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    psql(f"DROP DATABASE IF EXISTS {DB}")
    psql(f"CREATE DATABASE {DB}")
    proxy = Proxy(("127.0.0.1", 5432))
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{DB}"
    from kubestack_ai.storage import Store

    store = Store(url)
    store.migrate()
    flush_db11(BROKER12)
    home: Path = tmp_path_factory.mktemp("ksa-pg")
    w = Worker(home, worker_env(home, KSA_BROKER_URL=BROKER12, KSA_DATABASE_URL=url), name="pg")
    try:
        w.wait_ready()
        yield w, proxy, store
    finally:
        w.stop()
        proxy.close()
        store.dispose()
        psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def test_storage_outage_reported_then_resumed(pg_worker: tuple[Worker, Proxy, Any]) -> None:
    worker, proxy, store = pg_worker
    app = client_app(worker.env)
    target = {"name": "outage", "endpoints": ["127.0.0.1:1"], "options": {"behaviour": "ok"}}

    def run() -> dict[str, Any]:
        return app.send_task("diagnose.faulty",
                             kwargs={"target": target, "force": True}).get(timeout=40)

    try:
        before = run()
        assert before["stored"] is True and before["storage_error"] is None
        proxy.down()
        during = run()
        assert during["outcome"] == "completed" and during["status"] == "warning"
        assert during["stored"] is None
        assert during["storage_error"].startswith("storage unavailable during ")
        assert worker.proc.poll() is None
        proxy.up()
        after = run()
        assert after["stored"] is True and after["storage_error"] is None
        ids = {r.run_id for r in store.history("faulty:outage")}
        # the run made during the outage was kept and written once storage came back
        assert ids == {before["task_id"], during["task_id"], after["task_id"]}
    finally:
        app.close()
