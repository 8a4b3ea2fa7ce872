"""Issue 25.1 and 25.2 in Chromium: the front page is the fleet (one-off runs shown
apart), with each target's last 24 hours as a strip; a target page charts its plugin's
key metrics over time (server-drawn SVG, no script), findings marked on the time axis.
Screenshots are saved as test artifacts.

The history is written as the workers write it (``record_run``) with start times spread
over the last day: a day of real runs cannot be waited for in a test. The newest run of
the fleet target is a real diagnosis of a real Redis server.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager
from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status, utcnow
from kubestack_ai.storage import FleetMember, Store
from tests.redis.util import Servers

from .browser import Browser
from .conftest import Web, docs_image, need_bin, web_view

PID = "redis-diagnostics"
OOM = Finding(code="redis.memory.noeviction_near_limit", category="memory",
              severity=Severity.CRITICAL, title="Writes refused soon",
              evidence={"used_memory": 1}, suggestion="Raise maxmemory.")


def _run(store: Store, key: str, at: dt.datetime, used: int, status: Status = Status.HEALTHY,
         findings: list[Finding] | None = None, ops: int = 0) -> None:
    store.record_run(f"t-{uuid.uuid4().hex}", key, PID, (), DiagnosticResult(
        plugin_id=PID, target_name=key.split(":", 1)[1], status=status, started_at=at,
        duration=0.01, findings=findings or [],
        metrics={"used_memory": used, "mem_fragmentation_ratio": 1.1,
                 "connected_clients": 3, "total_commands_processed": ops}), ttl=None)


@pytest.fixture(scope="module")
def trended(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Web, str]]:
    need_bin("redis-server", "redis-server")
    tmp = tmp_path_factory.mktemp("web-trends")
    url = f"sqlite:///{tmp / 'ksa.db'}"
    store = Store(url)
    store.migrate()
    servers = Servers(tmp)
    manager = PluginManager()
    manager.load_builtins()
    try:
        srv = servers.start()
        key = "redis:cache-1"
        store.set_fleet([FleetMember(key, "redis", (srv.addr,), 300.0)])
        now = utcnow()
        # memory climbing over the day; critical between 6 and 3 hours ago
        for i in range(48):
            at = now - dt.timedelta(minutes=30 * (48 - i))
            crit = 36 <= i < 42
            _run(store, key, at, 50_000_000 + i * 4_000_000,
                 Status.CRITICAL if crit else Status.HEALTHY, [OOM] if crit else None,
                 ops=i * 1800)
        target = MiddlewareTarget(type="redis", name="cache-1", endpoints=(srv.addr,))
        real = manager.diagnose(target, DiagnoseOptions(categories=("memory",)))
        assert store.record_run(f"real-{uuid.uuid4().hex}", key, PID, ("memory",), real,
                                ttl=None)
        # a one-off run by hand against a mistyped port
        _run(store, "redis:127.0.0.1:6380", now - dt.timedelta(minutes=5), 0, Status.CRITICAL,
             [OOM])
        with web_view(url, tmp) as web:
            yield store, web, key
    finally:
        manager.stop_all()
        servers.stop_all()
        store.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need_bin("chromium", "chromium")
    need_bin("chromedriver", "chromium-driver")
    b = Browser()
    yield b
    b.close()


def test_front_page_is_the_fleet_with_a_24h_strip(browser: Browser,
                                                  trended: tuple[Store, Web, str],
                                                  artifacts: Path) -> None:
    store, web, key = trended
    browser.get(web.url + "/")
    assert [r.split()[1] for r in browser.texts("#targets tbody tr")] == ["cache-1"]
    assert "1 targets" in browser.text("h1")
    assert "1 critical" not in browser.text("#counts")  # the one-off critical is apart
    assert "Also 1 one-off target run by hand" in browser.text("#scope")
    row = f'tr[data-key="{key}"] .strip i'
    cells = browser.find_all(row)
    assert len(cells) == 24
    assert len(browser.find_all(f'tr[data-key="{key}"] .strip i.status-critical')) >= 3
    assert len(browser.find_all(f'tr[data-key="{key}"] .strip i.status-healthy')) >= 18
    browser.screenshot(artifacts / "fleet-strip.png")
    browser.follow("#scope a")
    assert [r.split()[1] for r in browser.texts("#targets tbody tr")] == ["127.0.0.1:6380"]
    assert "1 critical" in browser.text("#counts")
    browser.screenshot(artifacts / "fleet-one-off.png")


def test_target_page_charts_key_metrics_with_findings_on_the_time_axis(
        browser: Browser, trended: tuple[Store, Web, str], artifacts: Path) -> None:
    _, web, key = trended
    browser.get(web.url + "/targets/redis%3Acache-1")
    charts = browser.texts("#trends figcaption")
    assert charts[:4] == ["Memory used bytes · used_memory",
                          "Fragmentation (RSS / used) ratio · mem_fragmentation_ratio",
                          "Connected clients connections · connected_clients",
                          "Commands /s · total_commands_processed"], charts
    memory = 'figure[data-metric="used_memory"] svg'
    assert len(browser.find_all(memory + " polyline.series")) == 1
    axis = browser.texts(memory + " text")
    assert any(t.endswith("MiB") for t in axis), axis
    # the six critical runs are marked on the time axis of every chart
    assert len(browser.find_all(memory + " line.mark-critical")) == 6
    docs_image(browser.screenshot(artifacts / "target-trends.png"), "target-trends.png")
    browser.get(web.url + "/targets/redis%3Acache-1?hours=168")
    assert browser.text("#trends").startswith("Memory used")
    assert "the last 168 h" in browser.text("body")


def test_the_api_says_the_same(trended: tuple[Store, Web, str]) -> None:
    _, web, key = trended
    with urllib.request.urlopen(web.url + "/api/targets", timeout=5) as resp:
        fleet = json.loads(resp.read())
    assert (fleet["total"], fleet["other_total"]) == (1, 1)
    [t] = fleet["targets"]
    assert t["key"] == key and len(t["last_24h"]) == 24 and "critical" in t["last_24h"]
    with urllib.request.urlopen(web.url + "/api/targets?adhoc=1", timeout=5) as resp:
        adhoc = json.loads(resp.read())
    assert [t["key"] for t in adhoc["targets"]] == ["redis:127.0.0.1:6380"]


def test_favicon(trended: tuple[Store, Web, str]) -> None:
    """Issue 25.6: ``404 GET /favicon.ico`` on every page view."""
    _, web, _ = trended
    with urllib.request.urlopen(web.url + "/favicon.ico", timeout=5) as resp:
        assert resp.status == 200
        assert resp.read()[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "404" not in web.log.read_text()
