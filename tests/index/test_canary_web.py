"""The canary's web page and JSON (``ksa serve``): the comparison ``compare`` prints,
from runs stored as a worker stores them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.httpserver import HTTPServer

from kubestack_ai.plugins import DiagnosticResult, Finding, Severity, Status
from kubestack_ai.plugins.index import canary
from kubestack_ai.storage import Store
from kubestack_ai.web.app import make_app
from tests.conftest import free_port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store, Path]]:
    store = Store(f"sqlite:///{tmp_path}/ksa.db")
    store.migrate()
    home = tmp_path / "home"
    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    servers: list[HTTPServer] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        servers.append(HTTPServer(make_app(store, home=home)))
        servers[0].listen(port, "127.0.0.1")
        loop.call_soon(ready.set)
        loop.run_forever()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port}", store, home
    finally:
        async def stop() -> None:
            servers[0].stop()
            await servers[0].close_all_connections()
            loop.stop()

        asyncio.run_coroutine_threadsafe(stop(), loop)
        th.join(5)
        loop.close()
        store.dispose()


def stored(store: Store, target: str, version: str, codes: tuple[str, ...],
           at: dt.datetime, outcome: str = "completed") -> None:
    r = DiagnosticResult(
        plugin_id="fx", plugin_version=version, target_name=target, status=Status.WARNING,
        started_at=at, duration=0.01, outcome=outcome,
        findings=[Finding(code=c, category="basic", severity=Severity.WARNING, title=c,
                          evidence={"seen": 1}, suggestion="-") for c in codes])
    assert store.record_run(uuid.uuid4().hex, f"fx:{target}", "fx", (), r, ttl=None)


def test_canary_page_and_json(served: tuple[str, Store, Path]) -> None:
    url, store, home = served
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(minutes=10)
    (home / "plugins" / "fx").mkdir(parents=True)
    canary.write(home, "fx", {"plugin_id": "fx", "version": "2.0.0", "current_version": "1.0.0",
                              "location": "-", "share": 50, "state": "running",
                              "started_at": start.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    stored(store, "a", "1.0.0", ("fx.basic.one",), start - dt.timedelta(minutes=5))
    stored(store, "a", "2.0.0", ("fx.basic.one", "fx.basic.two"), now)
    stored(store, "b", "1.0.0", ("fx.basic.one",), now, outcome="timed_out")
    with urllib.request.urlopen(f"{url}/api/plugins/fx/canary", timeout=10) as r:
        data = json.load(r)
    assert data["only_canary"] == {"fx.basic.two": ["fx:a"]}
    assert (data["current"]["runs"], data["current"]["timeouts"]) == (1, 1)
    assert data["canary"]["runs"] == 1
    with urllib.request.urlopen(f"{url}/plugins/fx/canary", timeout=10) as r:
        page = r.read().decode()
    assert '<ul id="only_canary"><li><span class="code">fx.basic.two</span> on fx:a</li></ul>' \
        in page
    assert "<tr><td>time-outs</td><td>1</td><td>0</td></tr>" in page
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(f"{url}/plugins/other/canary", timeout=10)
    assert ei.value.code == 404
    ei.value.close()
