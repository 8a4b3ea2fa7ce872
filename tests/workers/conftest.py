"""A real Celery worker (prefork) on a redis-server of the test module's own (the
machine's Redis is shared with other suites' workers, which would take our tasks), with
the faulty test plugin; storage in SQLite under a temp dir."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CI, free_port, port_open, require  # noqa: F401 (the tests import them from here)

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
# KSA_TEST_BROKER_URL: another Redis db, so that test runs of several checkouts on one
# machine do not consume each other's tasks (they all default to db 11)
BROKER = os.environ.get("KSA_TEST_BROKER_URL") or "redis://127.0.0.1:6379/11"
BROKER_OWN = os.environ.get("KSA_TEST_BROKER_URL_OWN") or "redis://127.0.0.1:6379/12"
"""For the tests that start workers of their own next to the module's (db 12 by default)."""
SECRET = "s3cr3t-Zq8-never-shown"


def flush_db11(url: str = BROKER) -> None:
    import redis

    r = redis.Redis.from_url(url)
    r.flushdb()  # our own db number, never the shared data in db 0
    r.close()


def worker_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env.update({
        "KSA_HOME": str(home), "KSA_BROKER_URL": BROKER,
        "KSA_DATABASE_URL": f"sqlite:///{home}/ksa.db",
        "KSA_PLUGIN_MODULES": "ksa_testplugin",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        "KSA_TEST_SECRET": SECRET, "KSA_EXPECT_SECRET": SECRET, "KSA_TEST_WRONG_PW": "wrong",
        "KSA_PREFETCH": "1",
        # an external plugin (folder + plugin.yaml), loaded by every worker child
        "KSA_PLUGIN_PATH": str(ROOT / "examples" / "plugins"),
    })
    env.update(extra)
    return env


class Worker:
    def __init__(self, home: Path, env: dict[str, str], concurrency: int = 1,
                 name: str = "rel") -> None:
        self.home = home
        self.env = env
        self.log = home / f"worker-{name}.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "kubestack_ai.workers", "worker", "--loglevel", "debug",
             "-c", str(concurrency), "-n", f"{name}-{os.getpid()}@%h", "--without-mingle",
             "--without-gossip"],
            env=env, cwd=str(ROOT), stdout=self._out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 30) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if b" ready." in self.log.read_bytes():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited: {self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        raise AssertionError(f"worker not ready: {self.log.read_text()[-3000:]}")

    def children(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(x) for x in out.stdout.split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


class RedisServer:
    def __init__(self, tmp: Path) -> None:
        require(shutil.which("redis-server") is not None, "redis-server binary")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() - t0 < 10, "own redis-server did not start"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def client_app(env: dict[str, str]) -> Any:
    """A Celery app configured as the worker's (routes, queues), to send tasks."""
    sys.path.insert(0, str(HERE)) if str(HERE) not in sys.path else None
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    return create_app(Settings.from_env(env))


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """On a redis-server of the module's own: the machine's Redis is shared, and other
    suites' workers on its numbered databases would take this module's tasks."""
    home = tmp_path_factory.mktemp("ksa")
    broker = RedisServer(home)
    from kubestack_ai.storage import Store

    store = Store(f"sqlite:///{home}/ksa.db")
    store.migrate()
    store.dispose()
    w = Worker(home, worker_env(home, KSA_BROKER_URL=broker.url))
    try:
        w.wait_ready()
        yield w
    finally:
        w.stop()
        broker.close()


@pytest.fixture(scope="module")
def app(worker: Worker) -> Any:
    a = client_app(worker.env)
    yield a
    a.close()


@pytest.fixture(scope="module")
def store(worker: Worker) -> Any:
    from kubestack_ai.storage import Store

    s = Store(f"sqlite:///{worker.home}/ksa.db")
    yield s
    s.dispose()
