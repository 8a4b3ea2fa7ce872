"""The web view and /metrics show what an isolated run cost its plugin host (the latest
run's resources and each run's in the run list, stored with it), from a real run in a
real host, and the plugins page shows where each plugin runs and its isolation layers;
served by ``ksa serve``."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.plugins import MiddlewareTarget, PluginConfig
from kubestack_ai.plugins.isolation import HostPool, describe, locate
from kubestack_ai.plugins.models import DiagnosticResult, Status, utcnow
from kubestack_ai.storage import Store
from tests.conftest import port_open, require
from tests.web.browser import Browser
from tests.web.conftest import Web, need_bin, web_view

ROOT = Path(__file__).parent.parent.parent


@dataclass
class Served:
    web: Web
    result: DiagnosticResult
    iso_run: str
    worker_run: str
    marker: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``ksa serve`` over a store with: target tcp:iso-web diagnosed in a real plugin host
    (a run in the worker before it), tcp-diagnostics configured ``isolation: process``,
    two more tcp targets and one of a plugin not found here; the plugin directory holds
    the example HTTP plugin and a tripwire (plugin_folders)."""
    require(port_open("127.0.0.1", 6379), "redis on 127.0.0.1:6379")
    tmp = tmp_path_factory.mktemp("iso-web")
    plugins, marker = plugin_folders(tmp)
    url = f"sqlite:///{tmp / 'ksa.db'}"
    store = Store(url)
    store.migrate()
    pool = HostPool()
    try:
        t = MiddlewareTarget(type="tcp", name="iso-web", endpoints=("127.0.0.1:6379",))
        r = pool.run("diagnose", locate("tcp-diagnostics", True),
                     PluginConfig(isolation="process"), 0, t)
    finally:
        pool.close()
    assert r.resources is not None
    # an earlier run of the same target in the worker (no plugin host): no resources
    before = r.model_copy(update={"resources": None,
                                  "started_at": r.started_at - dt.timedelta(minutes=1)})
    worker_run, iso_run = f"w-{uuid.uuid4().hex}", f"iso-{uuid.uuid4().hex}"
    assert store.record_run(worker_run, t.key, r.plugin_id, (), before, ttl=None)
    assert store.record_run(iso_run, t.key, r.plugin_id, (), r, ttl=None)
    store.set_plugin_state("tcp-diagnostics", config={"isolation": "process",
                                                      "memory_limit_mb": 200})
    for run, name, pid in (("r1", "a", "tcp-diagnostics"), ("r2", "b", "tcp-diagnostics"),
                           ("r3", "c", "elsewhere-diagnostics")):
        other = DiagnosticResult(plugin_id=pid, target_name=name, status=Status.HEALTHY,
                                 started_at=utcnow(), duration=0.01)
        assert store.record_run(run, f"tcp:{name}", pid, (), other, ttl=None)
    store.dispose()
    (tmp / "web").mkdir()
    env = {"KSA_PLUGIN_PATH": str(plugins), "KSA_ISOLATION": "", "KSA_ISOLATION_ALLOW_NONE": ""}
    with web_view(url, tmp / "web", env=env) as web:
        yield Served(web, r, iso_run, worker_run, marker)


def get(web: Web, path: str) -> str:
    return str(urllib.request.urlopen(web.url + path).read().decode())


def test_target_page_and_metrics_show_the_plugin_hosts_resources(served: Served) -> None:
    web, r = served.web, served.result
    assert r.resources is not None
    api = json.loads(get(web, "/api/targets/tcp%3Aiso-web"))
    assert api["result"]["resources"] == r.resources
    page = get(web, "/targets/tcp%3Aiso-web")
    metrics = get(web, "/metrics")
    samples = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
               if line.startswith("ksa_plugin_host_")}
    assert samples == {
        'ksa_plugin_host_targets{type="tcp"}': 1.0,
        'ksa_plugin_host_cpu_seconds{type="tcp"}': r.resources["cpu_seconds"],
        'ksa_plugin_host_peak_memory_bytes{type="tcp"}': r.resources["peak_rss_mb"] * 2**20}
    line = next(x for x in page.splitlines() if 'id="plugin-host"' in x)
    assert f"plugin host ({r.resources['isolation']}): {r.resources['cpu_seconds']} s CPU, " \
           f"peak {r.resources['peak_rss_mb']} MB" in line
    # the run list: each isolated run with its host's CPU seconds and peak memory
    assert [(x["run_id"], x["resources"]) for x in api["recent_runs"]] == [
        (served.iso_run, r.resources), (served.worker_run, None)]
    cells = _run_rows(page)
    assert cells[served.iso_run] == [r.resources["isolation"],
                                     f"{r.resources['cpu_seconds']} s",
                                     f"{r.resources['peak_rss_mb']} MB"]
    assert cells[served.worker_run] == ["in the worker", "-", "-"]


def _run_rows(page: str) -> dict[str, list[str]]:
    """Run id -> the text of its row's plugin host, CPU and peak memory cells."""
    out = {}
    for run, row in re.findall(r'<tr data-run="([^"]+)">(.*?)</tr>', page, re.S):
        out[run] = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in
                    re.findall(r'<td class="(?:host|cpu|peak)[^"]*">(.*?)</td>', row, re.S)]
    return out


def plugin_folders(tmp: Path) -> tuple[Path, Path]:
    """A plugin directory: the example HTTP plugin, and a tripwire plugin whose code,
    if anything imported it, would leave a file (the web view must read manifests only)."""
    plugins = tmp / "plugins"
    shutil.copytree(ROOT / "examples" / "plugins" / "http-diagnostics",
                    plugins / "http-diagnostics")
    trip = plugins / "tripwire"
    trip.mkdir()
    marker = tmp / "tripwire-imported"
    (trip / "plugin.yaml").write_text(
        "id: tripwire-diagnostics\nname: Tripwire\nversion: 0.1.0\ntype: middleware\n"
        'api_version: "1.0"\nentry: plugin:Tripwire\ncapabilities: [diagnose]\n')
    (trip / "plugin.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    return plugins, marker


def test_plugins_page_shows_where_each_plugin_runs_and_each_layer(served: Served) -> None:
    """``/plugins`` (linked from every page): builtins and the external plugins found by
    manifest, the fleet's targets per plugin, and for each isolated plugin every layer as
    ``ksa plugin info`` says it (plugins.isolation.describe) on this machine; a plugin
    the fleet ran that is not found here is listed as such. No plugin code is imported."""
    api = json.loads(get(served.web, "/api/plugins"))
    page = get(served.web, "/plugins")
    front = get(served.web, "/")
    assert not served.marker.exists(), "the web view imported an external plugin's code"
    assert '<a href="/plugins" id="nav-plugins">plugins</a>' in front
    rows = {p["id"]: p for p in api["plugins"]}
    assert set(rows) == {"kafka-diagnostics", "mysql-diagnostics", "postgres-diagnostics",
                         "redis-diagnostics", "tcp-diagnostics", "http-diagnostics",
                         "tripwire-diagnostics", "elsewhere-diagnostics"}
    assert {k: p["targets"] for k, p in rows.items() if p["targets"]} == {
        "tcp-diagnostics": 3, "elsewhere-diagnostics": 1}
    expected = {
        "tcp-diagnostics": describe("tcp-diagnostics", PluginConfig(isolation="process"), True,
                                    {}),
        "http-diagnostics": describe("http-diagnostics", PluginConfig(), False, {}),
        "tripwire-diagnostics": describe("tripwire-diagnostics", PluginConfig(), False, {}),
        "redis-diagnostics": {"mode": "in the worker"}}
    for pid, iso in expected.items():
        assert rows[pid]["isolation"] == iso, pid
    assert expected["http-diagnostics"]["mode"] == "plugin host"
    assert rows["http-diagnostics"]["source"] == "directory"
    assert rows["tcp-diagnostics"]["limits"]["memory_limit_mb"] == 200
    assert rows["elsewhere-diagnostics"]["isolation"] is None
    # the page: each layer of each isolated plugin, active or why it is missing
    shown = _plugin_rows(page)
    for pid in ("tcp-diagnostics", "http-diagnostics", "tripwire-diagnostics"):
        layers = expected[pid]["layers"]
        assert isinstance(layers, dict)
        assert shown[pid]["mode"].startswith("plugin host"), pid
        assert shown[pid]["layers"] == {n: f"{n} {s}" for n, s in layers.items()}, pid
        assert list(layers) == ["process", "namespaces", "network", "seccomp", "cgroups",
                                "rlimits"]
    assert "memory 200 MB" in shown["tcp-diagnostics"]["mode"]
    assert shown["redis-diagnostics"]["mode"] == "in the worker"
    assert shown["redis-diagnostics"]["layers"] == {}
    assert "not found on this machine" in shown["elsewhere-diagnostics"]["mode"]


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def _plugin_rows(page: str) -> dict[str, dict[str, Any]]:
    """Plugin id -> the text of its ``Runs`` cell and of each layer shown."""
    out: dict[str, dict[str, Any]] = {}
    for pid, row in re.findall(r'<tr class="plugin" data-plugin="([^"]+)">(.*?)</tr>',
                               page, re.S):
        mode = re.search(r'<td class="mode">(.*?)</td>', row, re.S)
        assert mode is not None
        out[pid] = {"mode": _text(mode.group(1)), "layers": {
            name: _text(li) for name, li in re.findall(
                r'<li class="layer [a-z]+" data-layer="([a-z]+)">(.*?)</li>', row, re.S)}}
    return out


def test_run_list_and_plugins_page_in_chromium(served: Served,
                                               tmp_path_factory: pytest.TempPathFactory
                                               ) -> None:
    """As a person sees them: the run list's host columns and the plugins page's layers,
    rendered by headless Chromium (screenshots saved as test artifacts)."""
    need_bin("chromium", "chromium")
    need_bin("chromedriver", "chromium-driver")
    r = served.result
    assert r.resources is not None
    shots = tmp_path_factory.mktemp("iso-web-shots")
    b = Browser()
    try:
        b.get(served.web.url + "/targets/tcp%3Aiso-web")
        row = b.text(f'tr[data-run="{served.iso_run}"]')
        assert f"{r.resources['cpu_seconds']} s" in row
        assert f"{r.resources['peak_rss_mb']} MB" in row
        assert "in the worker" in b.text(f'tr[data-run="{served.worker_run}"]')
        b.screenshot(shots / "runs.png")
        b.get(served.web.url + "/")
        b.follow("#nav-plugins")
        layers = b.texts('tr[data-plugin="http-diagnostics"] li.layer')
        assert [x.split()[0] for x in layers] == ["process", "namespaces", "network",
                                                  "seccomp", "cgroups", "rlimits"]
        b.screenshot(shots / "plugins.png")
    finally:
        b.close()
