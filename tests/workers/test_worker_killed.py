"""The whole worker (main process and children) killed with SIGKILL mid-task: the
message stays unacknowledged in Redis, a new worker restores it once the visibility
timeout has passed, runs it, and the run is stored once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    BROKER_OWN,
    Worker,
    client_app,
    flush_db11,
    port_open,
    require,
    worker_env,
)

pytestmark = pytest.mark.timeout(120)

BROKER = BROKER_OWN


def test_killed_worker_task_redelivered_after_visibility_timeout(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    from kubestack_ai.storage import Store

    home: Path = tmp_path_factory.mktemp("ksa-kill")
    store = Store(f"sqlite:///{home}/ksa.db")
    store.migrate()
    # short limits for every plugin this worker loads, so the visibility timeout derived
    # from them (faulty's action task: hard 1 + 2 + 2 = 5 s x (prefetch 1 + 1) + 10 s = 20 s)
    # keeps the test short
    from kubestack_ai.plugins import builtin_ids

    for plugin_id in [*builtin_ids(), "http-diagnostics"]:  # + the external example
        if plugin_id != "faulty-diagnostics":
            # (an action task's limit counts too: connect + execute + grace)
            store.set_plugin_state(plugin_id, config={"timeouts": {
                "diagnose": 2, "grace": 1, "connect": 1, "execute": 1}})
    flush_db11(BROKER)
    env = worker_env(home, KSA_BROKER_URL=BROKER)
    first = Worker(home, env, name="kill1")
    app = client_app(env)
    second = None
    try:
        first.wait_ready()
        pidfile = home / "pids"
        target = {"name": "wkill", "endpoints": ["127.0.0.1:1"],
                  "options": {"behaviour": "sleep", "seconds": 1.0, "pidfile": str(pidfile)}}
        res = app.send_task("diagnose.faulty", kwargs={"target": target, "force": True})
        t0 = time.monotonic()
        while not pidfile.exists() and time.monotonic() - t0 < 20:
            time.sleep(0.1)
        children = first.children()
        os.kill(first.proc.pid, signal.SIGKILL)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        first.proc.wait(timeout=10)
        assert store.history("faulty:wkill") == []
        second = Worker(home, env, name="kill2")
        second.wait_ready()
        out: dict[str, Any] = res.get(timeout=60)
        assert out["outcome"] == "completed"
        assert len(pidfile.read_text().split()) == 2  # ran again in the new worker
        assert [r.run_id for r in store.history("faulty:wkill")] == [res.id]
    finally:
        first.stop()
        if second is not None:
            second.stop()
        app.close()
        store.dispose()
