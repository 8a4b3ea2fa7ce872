"""Worker start-up rules: prefork only, visibility timeout above the hard limits,
fork hygiene within billiard's 4 s, and ``celery call`` as a user types it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, worker_env

pytestmark = pytest.mark.timeout(60)


def test_other_pools_are_refused(tmp_path: Path) -> None:
    env = worker_env(tmp_path)
    out = subprocess.run([sys.executable, "-m", "celery", "-A", "kubestack_ai.workers", "worker",
                          "-P", "threads"],
                         env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=40)
    assert out.returncode == 2
    assert ("ksa: error: ksa workers need the prefork pool (soft and hard time limits, a memory "
            "cap per child); refusing to start with pool 'celery.concurrency.thread:TaskPool'"
            in out.stderr)


def test_visibility_timeout_stays_above_the_longest_hard_limit(tmp_path: Path) -> None:
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.limits import broker_options
    from kubestack_ai.workers.settings import Settings

    base = {"KSA_HOME": str(tmp_path), "KSA_BROKER_URL": "redis://127.0.0.1:6379/11"}
    # prefetch 4: a message may wait behind 4 others of up to 40 s, then run 40 s; + 10 s
    s = Settings.from_env({**base, "KSA_VISIBILITY_TIMEOUT": "10"})
    assert broker_options(s, 40.0) == {"visibility_timeout": 210.0, "unacked_restore_interval": 10,
                                       "unacked_restore_throttle": 1}
    s = Settings.from_env({**base, "KSA_VISIBILITY_TIMEOUT": "7200", "KSA_PREFETCH": "1"})
    assert broker_options(s, 40.0)["visibility_timeout"] == 7200.0
    app = create_app(Settings.from_env(base))
    try:
        hard = max(t.time_limit or 0 for n, t in app.tasks.items() if n.startswith("diagnose."))
        assert app.conf.broker_transport_options["visibility_timeout"] > hard * 5
        assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
        assert app.conf.timezone == "UTC" and app.conf.enable_utc
    finally:
        app.close()


def test_child_init_is_quick(worker: Any) -> None:
    times = [float(x) for x in re.findall(rb"child init in ([0-9.]+)s", worker.log.read_bytes())]
    assert times and max(times) < 1.0


def test_celery_call_as_a_user_types_it(worker: Any, app: Any) -> None:
    kwargs = json.dumps({"target": {"name": "cli", "endpoints": ["127.0.0.1:1"],
                                    "options": {"behaviour": "ok"}}})
    out = subprocess.run([sys.executable, "-m", "celery", "-A", "kubestack_ai.workers", "call",
                          "diagnose.faulty", "--kwargs", kwargs],
                         env=worker.env, cwd=str(ROOT), capture_output=True, text=True, timeout=40)
    assert out.returncode == 0, out.stderr
    task_id = out.stdout.strip().splitlines()[-1]
    r = app.AsyncResult(task_id).get(timeout=20)
    assert (r["target"], r["outcome"], r["status"]) == ("faulty:cli", "completed", "warning")


def test_the_embedded_broker_url_names_a_host(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Issue 25.6: ``ksa run`` printed kombu's ``No hostname was supplied. Reverting to
    default 'localhost'`` four times (the filesystem broker's URL had no host)."""
    import logging

    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    app = create_app(Settings.from_env({"KSA_HOME": str(tmp_path)}))
    try:
        with caplog.at_level(logging.WARNING, logger="kombu.connection"):
            conn = app.connection_for_write()
            conn.as_uri()
            conn.clone().release()
            conn.release()
        assert "No hostname was supplied" not in caplog.text
    finally:
        app.close()
