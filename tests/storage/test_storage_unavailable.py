"""The database unreachable: a clear StorageUnavailable (password masked), then recovery.

The outage is real: the store talks to the real server through a TCP relay that the test
cuts and restores, since the machine's shared servers must stay up.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from kubestack_ai.storage import StorageError, StorageUnavailable, Store
from tests.conftest import free_port

TK, PID = "redis:cache-1", "redis-diagnostics"


class Relay:
    """A loopback TCP relay to a real server that can be cut (connections reset, port
    closed) and restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self._server: socket.socket | None = None
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        srv.settimeout(0.05)
        self._server, self._stop = srv, threading.Event()
        self._spawn(self._accept, srv)

    def _spawn(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self, srv: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._socks += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        self._stop.set()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)
        if self._server is not None:
            self._server.close()
            self._server = None
        for s in self._socks:
            s.close()
        self._socks, self._threads = [], []


def test_unreachable_server_raises_storage_unavailable_with_the_password_masked() -> None:
    port = free_port()  # nothing listens there
    for url in (f"postgresql://ksa:Sup3rS3cret@127.0.0.1:{port}/ksa",
                f"mysql://ksa:Sup3rS3cret@127.0.0.1:{port}/ksa"):
        store = Store(url)
        with pytest.raises(StorageUnavailable) as e:
            store.history(TK)
        msg = str(e.value)
        assert "Sup3rS3cret" not in msg
        assert f"ksa:***@127.0.0.1:{port}/ksa" in msg
        assert "is unavailable (history)" in msg
        with pytest.raises(StorageUnavailable):
            store.migrate()
        assert "Sup3rS3cret" not in repr(store)
        store.dispose()


def test_sqlite_path_that_cannot_be_created() -> None:
    with pytest.raises(StorageUnavailable, match="cannot create /etc/hostname"):
        Store("sqlite:////etc/hostname/ksa.db").history(TK)


def test_not_a_url_does_not_echo_the_password() -> None:
    with pytest.raises(StorageError) as e:
        Store("postgres ql://u:hunter2@h/db")
    assert "hunter2" not in str(e.value)


def test_recovers_when_the_server_comes_back(server_databases, make_result) -> None:
    url = make_url(server_databases.new_url())
    relay = Relay(url.host or "127.0.0.1", url.port or 0)
    relay.start()
    store = Store(url.set(port=relay.port).render_as_string(hide_password=False))
    try:
        store.migrate()
        assert store.record_run("r1", TK, PID, (), make_result(), ttl=60) is True
        relay.stop()
        with pytest.raises(StorageUnavailable, match=f"127.0.0.1:{relay.port}"):
            store.history(TK)
        with pytest.raises(StorageUnavailable):
            store.record_run("r2", TK, PID, (), make_result(), ttl=60)
        relay.start()
        # the same store, no restart: pool_pre_ping drops the dead connections
        assert store.record_run("r2", TK, PID, (), make_result(), ttl=60) is True
        assert [r.run_id for r in store.history(TK)] == ["r2", "r1"]
        assert store.cached_result(TK, PID, ()) is not None
    finally:
        store.dispose()
        relay.stop()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'k.db'}", busy_timeout=7)
    try:
        store.migrate()
        with store.engine.connect() as c:
            assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert c.execute(text("PRAGMA busy_timeout")).scalar() == 7000
    finally:
        store.dispose()


def test_sqlite_locked_past_the_busy_timeout(tmp_path, make_result) -> None:
    path = tmp_path / "k.db"
    store = Store(f"sqlite:///{path}", busy_timeout=0.1)
    store.migrate()
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    try:
        other.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()
        with pytest.raises(StorageUnavailable, match="database is locked"):
            store.record_run("r1", TK, PID, (), make_result(), ttl=60)
        assert time.monotonic() - t0 < 5
        other.execute("COMMIT")
        assert store.record_run("r1", TK, PID, (), make_result(), ttl=60) is True
    finally:
        other.close()
        store.dispose()
