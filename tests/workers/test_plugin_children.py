"""A process forked by a plugin's import (in the worker's main process, which reads
every plugin at start, and in the child) or by its diagnosis (in the worker child) does
not outlive the call, while the worker runs on (issue 20, item 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from celery.exceptions import NotRegistered

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
        # the worker learns an external plugin's task types from a plugin host (issue 21):
        # no plugin code runs in the worker; there, starting a program is refused, so
        # this plugin does not load and its task is not served, saying why
        with pytest.raises(NotRegistered):
            app.send_task(f"diagnose.fx-{PID}", kwargs={
                "target": {"endpoints": ["127.0.0.1:1"]}, "force": True}).get(timeout=30)
        assert "Operation not permitted: 'sleep'" in w.log.read_text()
        started = [int(p.read_text()) for p in out.iterdir()]
        assert started == []  # nothing ran: no child, no daemon
        assert w.proc.poll() is None
    finally:
        w.stop()
        app.close()
        broker.close()
        for pid in started:
            if alive(pid):
                os.kill(pid, 9)
