"""A real Celery worker (prefork, one child): a plugin that segfaults in its host costs
one run; the same child takes the next task and a well-behaved plugin still diagnoses."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.workers.conftest import RedisServer, Worker, client_app, worker_env

from .conftest import HERE, ROOT


@pytest.fixture(scope="module")
def celery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Any]]:
    home = tmp_path_factory.mktemp("ksa")
    plugins = Path(str(home) + "-plugins")
    shutil.copytree(HERE / "plugins" / "hostile", plugins / "hostile")
    shutil.copytree(ROOT / "examples" / "plugins" / "http-diagnostics",
                    plugins / "http-diagnostics")
    broker = RedisServer(home)
    from kubestack_ai.storage import Store

    store = Store(f"sqlite:///{home}/ksa.db")
    store.migrate()
    store.dispose()
    w = Worker(home, worker_env(home, KSA_BROKER_URL=broker.url, KSA_PLUGIN_PATH=str(plugins)),
               name="iso")
    app = client_app(w.env)
    try:
        w.wait_ready()
        yield w, app
    finally:
        app.close()
        w.stop()
        broker.close()


def test_segfault_in_a_host_costs_one_run_not_the_child(celery: tuple[Worker, Any],
                                                        http_server: str) -> None:
    worker, app = celery
    target = {"name": "boom", "endpoints": ["127.0.0.1:9"], "options": {"attack": "segfault"}}
    out = app.send_task("diagnose.hostile", kwargs={"target": target, "force": True}).get(60)
    assert out["outcome"] == "killed" and out["stored"] is True
    assert out["result"]["errors"]["_run"] == ("the plugin host crashed (SIGSEGV, "
                                               "segmentation fault)")
    ok = app.send_task("diagnose.http", kwargs={"target": {"endpoints": [http_server]},
                                                "force": True}).get(60)
    assert ok["status"] == "healthy", ok
    assert ok["pid"] == out["pid"], "the same worker child took the next task"
    assert ok["result"]["resources"]["isolation"]
