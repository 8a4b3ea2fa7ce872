"""A real prefork worker picks up each install, update and rollback at its next task,
through the stored generation (the ``ksa`` commands run as processes of their own)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.external.util import write_plugin
from tests.workers.conftest import ROOT, RedisServer, Worker, client_app, worker_env

pytestmark = pytest.mark.timeout(120)
PID = "ix-plugin"


def ksa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)


def versions(app: Any, n: int = 4) -> set[str]:
    rs = [app.send_task(f"diagnose.fx-{PID}", kwargs={
        "target": {"endpoints": ["127.0.0.1:1"]}, "force": True}) for _ in range(n)]
    return {r.get(timeout=30)["result"]["plugin_version"] for r in rs}


def test_install_update_rollback_reach_every_worker_child(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "trusted_keys").mkdir(parents=True)
    broker = RedisServer(tmp_path)
    from kubestack_ai.storage import Store

    Store(f"sqlite:///{home}/ksa.db").migrate()
    index = tmp_path / "index"
    env = worker_env(home, KSA_BROKER_URL=broker.url, KSA_PLUGIN_PATH="",
                     KSA_INDEX=str(index))
    assert ksa(env, "index", "keygen", str(tmp_path / "pub")).returncode == 0
    shutil.copy(tmp_path / "pub.pub", home / "trusted_keys")
    for v in ("1.0.0", "2.0.0"):
        folder = write_plugin(tmp_path / v, PID, v)
        p = ksa(env, "index", "add", str(folder), "--index", str(index), "--key",
                str(tmp_path / "pub.key"))
        assert p.returncode == 0, p.stderr
    p = ksa(env, "plugin", "install", f"{PID}==1.0.0", "--yes")
    assert p.returncode == 0, p.stderr
    w = Worker(home, env, concurrency=2, name="ix")
    app = client_app(env)
    try:
        w.wait_ready()
        assert versions(app) == {"1.0.0"}
        p = ksa(env, "plugin", "update", PID, "--yes")
        assert p.returncode == 0, p.stderr
        assert f"{PID}: workers load {home}/plugins/{PID}/2.0.0 before their next task" in p.stdout
        assert versions(app) == {"2.0.0"}
        p = ksa(env, "plugin", "rollback", PID)
        assert p.returncode == 0, p.stderr
        assert p.stdout.splitlines()[0] == f"{PID}: rolled back 2.0.0 -> 1.0.0"
        assert versions(app) == {"1.0.0"}
    finally:
        w.stop()
        app.close()
        broker.close()
