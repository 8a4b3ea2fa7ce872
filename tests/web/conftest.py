"""Fixtures for the web view: a fleet of real Redis servers (healthy, warning, critical:
our own redis-server processes, faults seeded for real), diagnosed by the builtin plugin
and stored; ``ksa serve`` over that storage as its own process; tools installed when
missing (as .ci/run does)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from kubestack_ai.plugins import DiagnoseOptions, DiagnosticResult, MiddlewareTarget, PluginManager
from kubestack_ai.storage import Store
from tests.conftest import free_port, require
from tests.redis.util import RedisProc, Servers

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("cache-healthy", "cache-warning", "cache-critical")


def need_bin(binary: str, package: str) -> str:
    """The tool's path; installed from Debian when missing (CI fails when it cannot be)."""
    if shutil.which(binary) is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True,
                       timeout=600, check=False)
    path = shutil.which(binary)
    require(path is not None, f"{binary} (apt-get install -y {package})")
    assert path is not None
    return path


@dataclass
class Fleet:
    """Three real Redis targets, their diagnoses stored in ``store``."""

    store: Store
    url: str
    manager: PluginManager
    servers: dict[str, RedisProc] = field(default_factory=dict)

    def target(self, name: str) -> MiddlewareTarget:
        return MiddlewareTarget(type="redis", name=name, endpoints=(self.servers[name].addr,))

    def diagnose(self, name: str) -> DiagnosticResult:
        """A real diagnosis (memory category), stored as a worker stores it."""
        t = self.target(name)
        r = self.manager.diagnose(t, DiagnoseOptions(categories=("memory",)))
        assert self.store.record_run(f"web-{uuid.uuid4().hex}", t.key, r.plugin_id,
                                     ("memory",), r, ttl=None)
        return r

    def fix_critical(self) -> None:
        with self.servers["cache-critical"].client() as c:
            c.config_set("maxmemory", "0")
            c.flushall()


def fill(srv: RedisProc) -> None:
    with srv.client() as c:
        try:
            for i in range(600):
                c.set(f"k{i}", "x" * 10_000)
        except redis.ResponseError:
            pass  # noeviction at its limit refuses writes: the fault


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    need_bin("redis-server", "redis-server")
    tmp = tmp_path_factory.mktemp("web-fleet")
    url = f"sqlite:///{tmp / 'ksa.db'}"
    store = Store(url)
    store.migrate()
    servers = Servers(tmp)
    manager = PluginManager()
    manager.load_builtins()
    f = Fleet(store, url, manager)
    try:
        f.servers["cache-healthy"] = servers.start()
        # a cache at its limit evicting: warning; noeviction at its limit: critical
        f.servers["cache-warning"] = servers.start("--maxmemory", "3mb",
                                                   "--maxmemory-policy", "allkeys-lru")
        f.servers["cache-critical"] = servers.start("--maxmemory", "3mb",
                                                    "--maxmemory-policy", "noeviction")
        fill(f.servers["cache-warning"])
        fill(f.servers["cache-critical"])
        for _ in range(2):  # twice: a finding seen in both runs is ongoing
            for name in NAMES:
                f.diagnose(name)
        yield f
    finally:
        manager.stop_all()
        servers.stop_all()
        store.dispose()


@contextlib.contextmanager
def served(cmd: list[str], ready: str, log: Path,
           env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A server process of the test's own, yielded once ``ready`` answers; stopped after."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(ready, timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError(f"{cmd[0]} exited: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        else:
            raise AssertionError(f"{cmd[0]} did not answer {ready}: {log.read_text()[-2000:]}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def until(fn: Callable[[], Any], timeout: float = 30) -> Any:
    """``fn()``'s first truthy value, polled; fails with the last value after ``timeout``."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"not reached in {timeout}s: {last!r}")


@dataclass
class Web:
    url: str
    log: Path


@contextlib.contextmanager
def web_view(database_url: str, tmp: Path, *args: str,
             env: dict[str, str] | None = None) -> Iterator[Web]:
    """``ksa serve`` on ``database_url`` as its own process, on a free port."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    full_env = {**os.environ, "KSA_DATABASE_URL": database_url, "KSA_HOME": str(tmp),
                **(env or {})}
    url = f"http://127.0.0.1:{port}"
    with served([sys.executable, "-m", "kubestack_ai.ksa", "serve", "--port", str(port), *args],
                f"{url}/healthz", log, full_env):
        yield Web(url, log)


@pytest.fixture(scope="module")
def web(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    with web_view(fleet.url, tmp_path_factory.mktemp("web")) as w:
        yield w


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots and logs a person can look at after the run (path printed)."""
    where = os.environ.get("KSA_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("web-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"web test artifacts: {path}")
    return path


DOCS_IMG = ROOT / "docs" / "img"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def docs_image(shot: Path, name: str) -> None:
    """The README shows this screenshot as docs/img/NAME. With KSA_UPDATE_DOCS_IMAGES=1
    the test writes it there (commit it); otherwise the committed image must exist and
    have the size of the page the test just took: a test run never edits a tracked file."""
    dest = DOCS_IMG / name
    if os.environ.get("KSA_UPDATE_DOCS_IMAGES") == "1":
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(shot.read_bytes())
        print(f"docs image: {dest}")
    assert dest.exists(), f"{dest} missing: run this test with KSA_UPDATE_DOCS_IMAGES=1"
    assert png_size(dest) == png_size(shot)
