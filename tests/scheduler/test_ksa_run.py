"""``ksa run --fleet``: worker and beat on this machine with no broker server (kombu's
filesystem:// transport) and SQLite; a target added to the file gets diagnosed without
a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).parent.parent.parent


def _history(home: Path, key: str) -> list[object]:
    from kubestack_ai.storage import StorageError, Store

    s = Store(f"sqlite:///{home}/ksa.db")
    try:
        return list(s.history(key, limit=20))
    except StorageError:  # ksa run has not created the schema yet
        return []
    finally:
        s.dispose()


def _wait(fn: object, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if fn():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_ksa_run_on_embedded_broker_follows_the_fleet_file(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("defaults: {interval: 2, health_interval: 0}\n"
                     "targets:\n  - {name: a, type: tcp, endpoints: ['127.0.0.1:6379']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env["KSA_HOME"] = str(tmp_path / "home")
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "run", "--fleet", str(fleet),
                             "-c", "1"],
                            env=env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    home = tmp_path / "home"
    try:
        _wait(lambda: len(_history(home, "tcp:a")) >= 2, 45, "two scheduled runs of a")
        fleet.write_text(fleet.read_text() +
                         "  - {name: b, type: tcp, endpoints: ['127.0.0.1:6379']}\n")
        _wait(lambda: _history(home, "tcp:b"), 20, "the added target b")
        assert (home / "broker" / "queue").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert rc == 0, (tmp_path / "run.log").read_text()[-3000:]
