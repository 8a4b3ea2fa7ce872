"""What ``ksa diagnose redis`` says when it cannot diagnose (issue 12 item 16): a Redis
refusing at maxclients says so; another protocol on the port (MySQL, HTTP, a server that
speaks first) is "not a Redis server", at once, in one finding, without [ERR] lines."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import port_open, require

from ..conftest import run_ksa
from .util import Servers

ROOT = Path(__file__).resolve().parents[2]


def ksa(*args: str) -> subprocess.CompletedProcess[str]:
    return run_ksa(*args)


def diagnose(addr: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = ksa("diagnose", "redis", addr, *extra)
    return p, time.monotonic() - t0


def _fill(port: int, n: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]


def test_maxclients_reached_is_said_not_cannot_connect(servers: Servers) -> None:
    srv = servers.start("--maxclients", "4")
    socks = _fill(srv.port, 4)
    try:
        # the server is full: the next connection gets "max number of clients reached"
        p, _ = diagnose(srv.addr, "--json")
        assert p.returncode == 2, p.stderr
        (f,) = json.loads(p.stdout)["findings"]
        assert f["code"] == "redis.connection.maxclients_reached"
        assert f["severity"] == "critical"
        assert f["title"].startswith("Max clients reached")
        assert "max number of clients reached" in f["evidence"]["error"]
        assert "maxclients" in f["suggestion"] and "server runs" not in f["suggestion"]
        text, _ = diagnose(srv.addr)
        assert "Max clients reached" in text.stdout and "[ERR" not in text.stdout
        # the healthy look-alike: one slot free, the server is diagnosed (and near its
        # limit, which the clients check says)
        socks.pop().close()
        time.sleep(0.1)
        p, _ = diagnose(srv.addr, "--json", "-c", "connection")
        out = json.loads(p.stdout)
        found = {f["code"] for f in out["findings"]}
        assert "redis.connection.maxclients_reached" not in found
        assert "redis.connection.clients_high" in found and out["errors"] == {}
    finally:
        for s in socks:
            s.close()


class _Http(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<html>hello</html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def http_server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Http)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def banner_server() -> Iterator[str]:
    """Speaks first (like MySQL's greeting or an SSH banner) with no line end: a Redis
    client reading it as a reply would wait for the rest until its time-out."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.sendall(b"*\x0a5.5.5-10.11.6-MariaDB\x00")
            held.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    t.join(2)
    listener.close()
    for c in held:
        c.close()


def _not_redis(p: subprocess.CompletedProcess[str], seconds: float) -> None:
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Not a Redis server" in p.stdout
    assert "[ERR" not in p.stdout and "KeyError" not in p.stdout + p.stderr
    assert "server runs" not in p.stdout
    assert seconds < 4.0, seconds  # the process's start-up included: no 5 s time-out


def test_http_server_is_not_a_redis_server(http_server: str) -> None:
    p, seconds = diagnose(http_server)
    _not_redis(p, seconds)
    p, _ = diagnose(http_server, "--json")
    (f,) = json.loads(p.stdout)["findings"]
    assert f["code"] == "redis.connection.not_redis" and f["severity"] == "critical"
    assert json.loads(p.stdout)["errors"] == {"_connect": f["evidence"]["error"]}


def test_mysql_server_is_not_a_redis_server() -> None:
    require(port_open("127.0.0.1", 3306), "no MySQL/MariaDB on 127.0.0.1:3306")
    p, seconds = diagnose("127.0.0.1:3306")
    _not_redis(p, seconds)


def test_a_server_that_speaks_first_is_not_a_redis_server(banner_server: str) -> None:
    p, seconds = diagnose(banner_server)
    _not_redis(p, seconds)
    assert "speaks first" in p.stdout
