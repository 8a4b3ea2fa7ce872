"""``ksa run --fleet``: worker and beat on this machine with no broker server (kombu's
filesystem:// transport) and SQLite; a target added to the file gets diagnosed without
a restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

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
    out = tmp_path / "run.out"
    port = free_port()
    with open(out, "wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "run", "--fleet",
                                 str(fleet), "-c", "1", "--web-port", str(port)],
                                env=env, cwd=str(ROOT), stdout=stdout, stderr=log)
    home = tmp_path / "home"
    try:
        _wait(lambda: len(_history(home, "tcp:a")) >= 2, 45, "two scheduled runs of a")
        fleet.write_text(fleet.read_text() +
                         "  - {name: b, type: tcp, endpoints: ['127.0.0.1:6379']}\n")
        _wait(lambda: _history(home, "tcp:b"), 20, "the added target b")
        assert (home / "broker" / "queue").is_dir()
        # the terminal: where the web view is, then one line per completed run
        assert f"web view on http://127.0.0.1:{port}/" in (tmp_path / "run.log").read_text()
        _wait(lambda: "  tcp:b  healthy" in out.read_text(), 10, "a line for b's run")
        lines = out.read_text().splitlines()
        assert sum("  tcp:a  healthy" in line for line in lines) >= 2, lines
        assert all(line.endswith(" ms") for line in lines), lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/targets", timeout=10) as r:
            keys = {t["key"] for t in json.loads(r.read())["targets"]}
        assert keys == {"tcp:a", "tcp:b"}
        # issue 20.7: removed from the file, b leaves the view within an interval or two
        # (the file is re-read every tick); its history stays
        fleet.write_text(fleet.read_text().replace(
            "  - {name: b, type: tcp, endpoints: ['127.0.0.1:6379']}\n", ""))

        def keys_now() -> set[str]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/targets", timeout=10) as r:
                return {t["key"] for t in json.loads(r.read())["targets"]}
        _wait(lambda: keys_now() == {"tcp:a"}, 12, "b to leave the view")
        assert _history(home, "tcp:b")
        # issue 25.6: kombu's "No hostname was supplied" on every connection copy
        assert "No hostname was supplied" not in (tmp_path / "run.log").read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert rc == 0, (tmp_path / "run.log").read_text()[-3000:]


def test_ksa_run_goes_on_when_the_web_port_is_taken(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("defaults: {interval: 2, health_interval: 0}\n"
                     "targets:\n  - {name: a, type: tcp, endpoints: ['127.0.0.1:6379']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env["KSA_HOME"] = str(tmp_path / "home")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "run", "--fleet",
                                 str(fleet), "-c", "1", "--web-port", str(port), "--no-beat"],
                                env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(4)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert f"warning: web view not started: 127.0.0.1:{port} is in use" in err


def _children(pid: int) -> dict[int, str]:
    out = subprocess.run(["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True)
    return {int(line.split()[0]): line for line in out.stdout.splitlines()}


def _worker_pid(pid: int) -> int | None:
    return next((p for p, cmd in _children(pid).items() if " worker " in cmd), None)


def test_ksa_run_restarts_a_worker_that_died(tmp_path: Path) -> None:
    """The worker killed under ``ksa run``: the terminal says so, a new worker starts
    after the back-off, and the fleet's runs go on; ksa run itself does not stop."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("defaults: {interval: 1, health_interval: 0}\n"
                     "targets:\n  - {name: a, type: tcp, endpoints: ['127.0.0.1:6379']}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env["KSA_HOME"] = str(tmp_path / "home")
    home = tmp_path / "home"
    log = tmp_path / "run.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "run", "--fleet",
                                 str(fleet), "-c", "1", "--no-web"],
                                env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=err)
    try:
        _wait(lambda: len(_history(home, "tcp:a")) >= 1, 45, "a first run of a")
        first = _worker_pid(proc.pid)
        assert first is not None, _children(proc.pid)
        os.kill(first, signal.SIGKILL)
        _wait(lambda: "ksa run: worker exited" in log.read_text(), 10, "the exit line")
        assert "ksa run: worker exited (signal SIGKILL): restarting in 2 s" in log.read_text()
        assert proc.poll() is None, log.read_text()[-3000:]
        _wait(lambda: _worker_pid(proc.pid) not in (None, first), 10, "a new worker")
        before = len(_history(home, "tcp:a"))
        _wait(lambda: len(_history(home, "tcp:a")) > before + 1, 45, "runs after the restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0, log.read_text()[-3000:]
    assert log.read_text().count("exited (") == 1, log.read_text()[-3000:]
