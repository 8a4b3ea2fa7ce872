"""An action whose worker child dies mid-action (killed at the hard time limit, or
SIGKILLed) does not stay ``started`` in the audit log: the worker's main process keeps the
end on local disk and the next storage write of any process closes the row as ``killed``,
with the reason and how long it ran; ``ksa results --audit`` and the web view show it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.storage import AuditRecord, Store

from .conftest import ROOT, Worker

pytestmark = pytest.mark.timeout(90)


def _pid(pidfile: Path) -> int:
    t0 = time.monotonic()
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() - t0 < 20, "the action did not start"
        time.sleep(0.05)
    return int(pidfile.read_text().split()[0])


def _final(app: Any, store: Store, name: str, timeout: float = 10) -> AuditRecord:
    """The target's last audit row once it is no longer ``started``, after a diagnosis of
    the target by the same worker (which stores its run, as any task of a child does)."""
    key = f"faulty:{name}"
    app.send_task("diagnose.faulty", kwargs={"target": {"name": name, "endpoints": [
        "127.0.0.1:1"]}, "force": True}).get(timeout=30)
    t0 = time.monotonic()
    while True:
        rows = store.audit_log(target=key, limit=1)
        if rows and rows[0].outcome != "started":
            return rows[0]
        assert time.monotonic() - t0 < timeout, f"still started: {rows}"
        time.sleep(0.2)


def _nap(app: Any, name: str, tmp: Path, **params: Any) -> tuple[Any, Path]:
    pidfile = tmp / f"{name}.pid"
    r = app.send_task("action.faulty", args=({"name": name, "endpoints": ["127.0.0.1:1"]},
                                             "nap"),
                      kwargs={"params": {"pidfile": str(pidfile), **params}})
    return r, pidfile


def test_action_child_sigkilled_is_audited_as_killed(app: Any, store: Store, worker: Worker,
                                                     tmp_path: Path) -> None:
    r, pidfile = _nap(app, "sigkilled", tmp_path, seconds=30)
    pid = _pid(pidfile)
    time.sleep(0.3)
    assert store.audit_log(target="faulty:sigkilled", limit=1)[0].outcome == "started"
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(Exception, match="(?i)worker|signal|lost"):
        r.get(timeout=20)
    a = _final(app, store, "sigkilled")
    assert a.outcome == "killed" and not a.ok, a
    assert "SIGKILL" in (a.error or "") or "signal 9" in (a.error or ""), a.error
    assert 0.2 < a.duration < 10, a.duration


def test_action_past_its_hard_limit_is_audited_as_killed(app: Any, store: Store,
                                                         worker: Worker, tmp_path: Path) -> None:
    t0 = time.monotonic()
    r, pidfile = _nap(app, "stubborn", tmp_path, seconds=30, stubborn=True)
    _pid(pidfile)
    with pytest.raises(Exception, match="(?i)time ?limit"):
        r.get(timeout=30)
    assert time.monotonic() - t0 < 15
    a = _final(app, store, "stubborn")
    assert a.outcome == "killed", a
    assert "hard time limit (5 s)" in (a.error or ""), a.error
    assert 4 < a.duration < 10, a.duration
    # what an operator reads
    env = {**worker.env, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "results", "--audit",
                          "faulty:stubborn"], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "killed" in out and "started" not in out, out
    from kubestack_ai.web.views import target

    page = target(store, "faulty:stubborn")
    assert page is not None
    assert [(x["action"], x["outcome"]) for x in page["audit"]][:1] == [("nap", "killed")]
