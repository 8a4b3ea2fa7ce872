"""The web view and /metrics show what an isolated run cost its plugin host (the latest
run's resources, stored with it), from a real run in a real host, served by ``ksa serve``."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import urllib.request
import uuid
from pathlib import Path

from kubestack_ai.plugins import MiddlewareTarget, PluginConfig
from kubestack_ai.plugins.isolation import HostPool, locate
from kubestack_ai.storage import Store
from tests.conftest import port_open, require
from tests.web.conftest import web_view


def test_target_page_and_metrics_show_the_plugin_hosts_resources(tmp_path: Path) -> None:
    require(port_open("127.0.0.1", 6379), "redis on 127.0.0.1:6379")
    url = f"sqlite:///{tmp_path / 'ksa.db'}"
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
    store.dispose()
    (tmp_path / "web").mkdir()
    with web_view(url, tmp_path / "web") as web:
        api = json.loads(urllib.request.urlopen(web.url + "/api/targets/tcp%3Aiso-web").read())
        assert api["result"]["resources"] == r.resources
        page = urllib.request.urlopen(web.url + "/targets/tcp%3Aiso-web").read().decode()
        metrics = urllib.request.urlopen(web.url + "/metrics").read().decode()
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
        (iso_run, r.resources), (worker_run, None)]
    cells = _run_rows(page)
    assert cells[iso_run] == [r.resources["isolation"], f"{r.resources['cpu_seconds']} s",
                              f"{r.resources['peak_rss_mb']} MB"]
    assert cells[worker_run] == ["in the worker", "-", "-"]


def _run_rows(page: str) -> dict[str, list[str]]:
    """Run id -> the text of its row's plugin host, CPU and peak memory cells."""
    out = {}
    for run, row in re.findall(r'<tr data-run="([^"]+)">(.*?)</tr>', page, re.S):
        out[run] = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in
                    re.findall(r'<td class="(?:host|cpu|peak)[^"]*">(.*?)</td>', row, re.S)]
    return out
