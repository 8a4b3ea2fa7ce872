"""``ksa run`` while its storage (a PostgreSQL server of the test's own) is down: it
starts, its workers spool the runs, and when the server is back the schema is created
and every spooled run is written."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pgserver
from tests.conftest import free_port, require

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).parent.parent.parent


@pytest.fixture
def pg() -> Iterator[pgserver.PgServer]:
    require(pgserver.available(), "PostgreSQL server binaries (initdb, postgres)")
    server = pgserver.PgServer()  # initialised, not started: storage is down
    try:
        yield server
    finally:
        server.close()


def _wait(fn: object, timeout: float, what: str, log: Path) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if fn():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {log.read_text()[-3000:]}")


def _stored(url: str) -> set[str]:
    from kubestack_ai.storage import StorageError, Store

    s = Store(url, timeout=2)
    try:
        return {r.run_id for r in s.history("tcp:a", limit=100)}
    except StorageError:
        return set()
    finally:
        s.dispose()


def test_ksa_run_starts_while_storage_is_down_spools_and_migrates_when_it_is_back(
        pg: pgserver.PgServer, tmp_path: Path) -> None:
    from kubestack_ai.storage.spool import Spool

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("defaults: {interval: 1, health_interval: 0}\n"
                     "targets:\n  - {name: a, type: tcp, endpoints: ['127.0.0.1:6379']}\n")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env.update(KSA_HOME=str(home), KSA_DATABASE_URL=pg.url, KSA_STORAGE_TIMEOUT="2")
    # the plugin's state was read on this machine before (fail closed: a plugin whose
    # state was never read, it may be disabled, is refused until storage answers)
    seed = {k: v for k, v in env.items() if k != "KSA_DATABASE_URL"}
    subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", "diagnose", "tcp",
                    "127.0.0.1:6379", "--no-store"], env=seed, cwd=str(ROOT),
                   capture_output=True, timeout=60, check=True)
    assert (home / "plugin-states.json").exists()
    port = free_port()
    log = tmp_path / "run.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "run", "--fleet",
                                 str(fleet), "-c", "1", "--web-port", str(port)],
                                env=env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=err)
    spool = Spool(home / "spool")
    try:
        _wait(lambda: len(spool) >= 2 or proc.poll() is not None, 60, "two spooled runs", log)
        assert proc.poll() is None, log.read_text()[-3000:]
        text = log.read_text()
        assert "ksa run: warning: storage database postgresql+psycopg://postgres@127.0.0.1:" \
               in text and "is unavailable" in text, text[-3000:]
        assert "runs are kept in the spool" in text, text[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert r.status == 200  # the web view started too (its pages say storage is down)
        spooled = set(spool.run_ids())
        pg.start()
        _wait(lambda: spooled <= _stored(pg.url), 60, "the spooled runs written", log)
        assert re.search(r"ksa (run|serve): storage is back", log.read_text())  # whichever sees it first
        assert not spool.rejected() and spool.dropped() == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert rc == 0, log.read_text()[-3000:]
