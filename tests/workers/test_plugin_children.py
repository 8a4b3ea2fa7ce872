"""A process forked by a plugin's import (in the worker's main process, which reads
every plugin at start, and in the child) or by its diagnosis (in the worker child) does
not outlive the call, while the worker runs on (issue 20, item 3)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.external.test_plugin_children import SPAWN, alive
from tests.external.util import write_plugin

from .conftest import RedisServer, Worker, client_app, worker_env

pytestmark = pytest.mark.timeout(90)
PID = "kids"


def test_processes_a_plugin_starts_in_a_worker_end_with_the_call(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write_plugin(tmp_path / "plugins", PID, top=SPAWN.format(out=str(out)) +
                 "\n_KEEP = _spawn('import-' + str(__import__('os').getpid()))\n",
                 init="self._kept = _spawn('init')")
    broker = RedisServer(tmp_path)
    env = worker_env(tmp_path, KSA_BROKER_URL=broker.url,
                     KSA_PLUGIN_PATH=str(tmp_path / "plugins"))
    w = Worker(tmp_path, env, name="kids")
    app = client_app(env)
    started: list[int] = []
    try:
        w.wait_ready()
        r = app.send_task(f"diagnose.fx-{PID}", kwargs={
            "target": {"endpoints": ["127.0.0.1:1"]}, "force": True}).get(timeout=30)
        # the plugin runs in its plugin host (issue 21), where starting a program is
        # refused: the run fails, saying so
        assert r["outcome"] == "failed", r
        assert "Operation not permitted: 'sleep'" in json.dumps(r), r
        started = [int(p.read_text()) for p in out.iterdir()]
        # the worker's import of the plugin (its task types): a child and a daemon, ended
        assert len(started) >= 2, sorted(p.name for p in out.iterdir())
        assert [pid for pid in started if alive(pid)] == []
        assert w.proc.poll() is None
    finally:
        w.stop()
        app.close()
        broker.close()
        for pid in started:
            if alive(pid):
                os.kill(pid, 9)
