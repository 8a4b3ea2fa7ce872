"""``ksa plugin reload ID --from PATH`` and ``ksa plugin rollback ID`` reach every worker
child through the stored generation: a real prefork worker runs version 2 after the
reload and version 1 after the rollback (the CLI process itself has no earlier version
loaded)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.external.util import write_plugin

from .conftest import ROOT, Worker, client_app, flush_db11, port_open, require, worker_env

pytestmark = pytest.mark.timeout(120)
PID = "rb-plugin"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Any, Path]]:
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    flush_db11()
    home = tmp_path_factory.mktemp("ksa-rb")
    write_plugin(home / "plugins", PID, "1.0.0")
    write_plugin(home / "v2", PID, "2.0.0")
    from kubestack_ai.storage import Store

    Store(f"sqlite:///{home}/ksa.db").migrate()
    env = worker_env(home, KSA_PLUGIN_PATH=str(home / "plugins"))
    w = Worker(home, env, concurrency=2, name="rb")
    app = client_app(env)
    try:
        w.wait_ready()
        yield w, app, home
    finally:
        w.stop()
        app.close()


def versions(app: Any, n: int = 4) -> set[str]:
    rs = [app.send_task(f"diagnose.fx-{PID}", kwargs={
        "target": {"endpoints": ["127.0.0.1:1"]}, "force": True}) for _ in range(n)]
    return {r.get(timeout=30)["result"]["plugin_version"] for r in rs}


def ksa(w: Worker, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, env=w.env)


def test_reload_from_a_path_then_rollback_reach_every_worker_child(setup) -> None:
    w, app, home = setup
    assert versions(app) == {"1.0.0"}
    v2 = home / "v2" / PID
    p = ksa(w, "plugin", "reload", PID, "--from", str(v2))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"reloaded {PID}: 1.0.0 -> 2.0.0 from ")
    assert f"{PID}: workers reload it from {v2} before their next task (generation 1)" in p.stderr
    assert versions(app) == {"2.0.0"}
    info = ksa(w, "plugin", "info", PID, "--json")
    assert '"workers_load_from": "' + str(v2) + '"' in info.stdout

    p = ksa(w, "plugin", "rollback", PID)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == (f"{PID}: workers roll back to its plugin directory before their "
                                "next task (generation 2)")
    assert versions(app) == {"1.0.0"}

    p = ksa(w, "plugin", "rollback", PID)
    assert p.returncode == 1
    assert p.stderr.strip() == (f"ksa: error: plugin '{PID}': no reload from another location "
                                "to roll back (reload with --from PATH to keep versions apart)")
    assert versions(app) == {"1.0.0"}
