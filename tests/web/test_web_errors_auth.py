"""The web view when storage is down (a clear page, then recovery), its credentials, and
its place in the layers (storage only: never workers, scheduler or the CLI)."""

from __future__ import annotations

import ast
import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from kubestack_ai.plugins.models import DiagnosticResult, Status, utcnow
from kubestack_ai.storage import Store
from tests.conftest import port_open, require
from tests.storage.test_storage_unavailable import Relay

from .conftest import ROOT, web_view

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode()


@pytest.fixture
def pg_database() -> Iterator[str]:
    require(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    name = f"ksa_web_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield name
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_database_down_is_a_clear_page_then_it_recovers(pg_database: str, tmp_path: Path) -> None:
    relay = Relay("127.0.0.1", 5432)
    relay.start()
    # trust auth ignores the password: it is here to show it never reaches a page
    url = f"postgresql+psycopg://postgres:n0t-sh0wn@127.0.0.1:{relay.port}/{pg_database}"
    store = Store(url)
    store.migrate()
    r = DiagnosticResult(plugin_id="redis-diagnostics", target_name="db-down-1",
                         status=Status.HEALTHY, started_at=utcnow(), duration=0.01)
    store.record_run("run-1", "redis:db-down-1", "redis-diagnostics", (), r, ttl=None)
    store.dispose()
    try:
        _down_then_back(url, tmp_path, relay, pg_database)
    finally:
        relay.stop()


def _down_then_back(url: str, tmp_path: Path, relay: Relay, pg_database: str) -> None:
    with web_view(url, tmp_path) as web:
        assert _fetch(web.url + "/")[0] == 200
        relay.stop()
        for path in ("/", "/targets/redis%3Adb-down-1"):
            code, body = _fetch(web.url + path)
            assert code == 503
            assert "Storage unavailable" in body
            assert f"postgresql (127.0.0.1:{relay.port}) cannot be reached" in body
            for leak in ("Traceback", "n0t-sh0wn", pg_database, "postgres:", "psycopg"):
                assert leak not in body, leak
        code, body = _fetch(web.url + "/api/targets")
        assert code == 503 and '"error": "The storage database' in body
        code, _ = _fetch(web.url + "/metrics")
        assert code == 503  # Prometheus sees the scrape fail (up == 0)
        relay.start()
        deadline = time.monotonic() + 20
        while (got := _fetch(web.url + "/"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert got[0] == 200 and "db-down-1" in got[1]
        assert "n0t-sh0wn" not in web.log.read_text()


def test_binding_beyond_loopback_needs_credentials(tmp_path: Path) -> None:
    env = {**os.environ, "KSA_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "serve", "--host", "0.0.0.0",
                          "--port", "1"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert "binding 0.0.0.0 serves the fleet beyond this machine" in out.stderr
    out = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "serve", "--token-ref",
                          "hunter2-literal"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2 and "by reference" in out.stderr
    assert "hunter2" not in out.stderr


def test_token_and_basic_auth_on_every_route_but_metrics(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ksa.db'}"
    Store(url).migrate()
    (tmp_path / "secrets").mkdir()  # $KSA_HOME/secrets: allowed by default
    (tmp_path / "secrets" / "pw").write_text("basic-pw\n")
    with web_view(url, tmp_path, "--token-ref", "env:KSA_TEST_WEB_TOKEN", "--user", "ops",
                  "--password-ref", f"file:{tmp_path / 'secrets' / 'pw'}",
                  env={"KSA_TEST_WEB_TOKEN": "tok-123"}) as web:
        for path in ("/", "/api/targets", "/targets/redis%3Ax", "/api/targets/x/history"):
            code, body = _fetch(web.url + path)
            assert code == 401, path
            assert "tok-123" not in body and "basic-pw" not in body
        assert _fetch(web.url + "/", {"Authorization": "Bearer wrong"})[0] == 401
        assert _fetch(web.url + "/", {"Authorization": "Bearer tok-123"})[0] == 200
        basic = base64.b64encode(b"ops:basic-pw").decode()
        assert _fetch(web.url + "/api/targets", {"Authorization": f"Basic {basic}"})[0] == 200
        bad = base64.b64encode(b"ops:nope").decode()
        assert _fetch(web.url + "/api/targets", {"Authorization": f"Basic {bad}"})[0] == 401
        assert _fetch(web.url + "/metrics")[0] == 200  # its own token, none set


LAYERS = ("kubestack_ai.workers", "kubestack_ai.scheduler", "kubestack_ai.ksa")


def test_web_and_notify_import_nothing_above_storage() -> None:
    for package in ("web", "notify"):
        for path in (ROOT / "kubestack_ai" / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    assert not name.startswith(LAYERS), f"{path}: imports {name}"
    # and at run time, nothing pulls them in indirectly
    code = ("import sys, kubestack_ai.web, kubestack_ai.notify; "
            f"print([m for m in sys.modules if m.startswith({LAYERS!r})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
