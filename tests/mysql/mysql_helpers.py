"""Helpers of the MySQL plugin's tests: a mariadbd we start, targets, result lookups."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pymysql

from kubestack_ai.plugins import DiagnoseOptions, DiagnosticResult, MiddlewareTarget, PluginManager
from tests.conftest import free_port, port_open

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"

# a server with every durability setting wrong, name resolution on, a low
# max_connections, and the smallest buffer pool (6 MB) flushed slowly, so that writing
# 4 x 13 MB at once makes queries wait for free pages (the tests' and bench/peers_mysql.py's faults) ...
WEAK_ARGS = ["--server-id=8", "--log-bin=weak-bin", "--sync-binlog=0",
             "--innodb-flush-log-at-trx-commit=2", "--innodb-doublewrite=0",
             "--max-connections=10", "--skip-name-resolve=OFF",
             "--innodb-buffer-pool-size=6M", "--innodb-io-capacity=100",
             "--innodb-io-capacity-max=100", "--innodb-max-dirty-pages-pct=99",
             "--innodb-lru-scan-depth=128"]
# ... and its healthy look-alike
DURABLE_ARGS = ["--server-id=9", "--log-bin=durable-bin", "--sync-binlog=1",
                "--innodb-flush-log-at-trx-commit=1", "--binlog-expire-logs-seconds=604800"]
INSTALL_DB = shutil.which("mariadb-install-db")


class Instance:
    """One mariadbd we started."""

    def __init__(self, name: str, base: Path, template: Path, args: list[str]) -> None:
        self.name = name
        self.password = ""  # root's, once a test sets one
        self.dir = base / name
        self.port = free_port()
        shutil.copytree(template, self.dir / "data")
        self.log = self.dir / "error.log"
        cmd = [MARIADBD, "--no-defaults", f"--datadir={self.dir / 'data'}",
               f"--socket={self.dir / 's.sock'}", f"--port={self.port}",
               "--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve",
               f"--log-error={self.log}", f"--pid-file={self.dir / 'mariadbd.pid'}",
               "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M",
               "--skip-log-bin", *args]
        if any(a.startswith("--log-bin") for a in args):
            cmd.remove("--skip-log-bin")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self, timeout: float = 30.0) -> Instance:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd {self.name} exited: {self.log.read_text()[-2000:]}")
            if port_open("127.0.0.1", self.port):
                try:
                    self.connect().close()
                    return self
                except pymysql.err.MySQLError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"mariadbd {self.name} did not answer in {timeout} s")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def connect(self, user: str = "root", password: str | None = None, **kw: Any) -> Any:
        kw.setdefault("autocommit", True)
        if password is None:
            password = self.password if user == "root" else ""
        return pymysql.connect(host="127.0.0.1", port=self.port, user=user, password=password,
                               connect_timeout=5, **kw)

    def sql(self, *statements: str) -> list[Any]:
        out: list[Any] = []
        with self.connect() as c, c.cursor(pymysql.cursors.DictCursor) as cur:
            for s in statements:
                cur.execute(s)
                out.append(cur.fetchall())
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def count_rows(inst: Instance, table: str) -> int:
    try:
        return int(inst.sql(f"SELECT COUNT(*) AS n FROM {table}")[0][0]["n"])
    except pymysql.err.MySQLError:
        return -1


def wait_replica(replica: Instance, ok: Any, timeout: float = 20.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    row: dict[str, Any] = {}
    while time.monotonic() < end:
        got = replica.sql("SHOW SLAVE STATUS")[0]
        row = got[0] if got else {}
        if row and ok(row):
            return row
        time.sleep(0.1)
    raise AssertionError(f"replica never reached the state; last status: "
                         f"IO={row.get('Slave_IO_Running')} SQL={row.get('Slave_SQL_Running')} "
                         f"err={row.get('Last_SQL_Error') or row.get('Last_IO_Error')}")


def target(endpoint: str, **kw: Any) -> MiddlewareTarget:
    data: dict[str, Any] = {"type": "mysql", "endpoints": [endpoint]}
    if "auth" not in kw:
        data["auth"] = {"username": "root"}
    data.update(kw)
    return MiddlewareTarget.model_validate(data)


def diagnose(manager: PluginManager, t: MiddlewareTarget, *categories: str,
             **kw: Any) -> DiagnosticResult:
    return manager.diagnose(t, DiagnoseOptions(categories=categories, **kw), timeout=20)


def codes(result: DiagnosticResult) -> set[str]:
    return {f.code for f in result.findings}


def finding(result: DiagnosticResult, code: str) -> Any:
    found = [f for f in result.findings if f.code == code]
    assert found, f"no {code} in {sorted(codes(result))}; errors={result.errors}"
    return found[0]


def wait_for_free_pages(inst: Instance, rounds: int = 6, writers: int = 4) -> int:
    """On a WEAK_ARGS server: four connections at once each write 13 MB through its 6 MB
    pool, flushed at 100 IOPS with 128 pages a second scanned for free ones, until a
    query has waited for a free page. Returns Innodb_buffer_pool_wait_free. (One writer
    is not enough: 15 MB, and later 50 MB, a round from one connection waited in no
    round of some runs, idle or loaded; four writers waited in the first round of each
    of our tries, idle and with both cores busy.)"""
    import threading

    def write(i: int) -> None:
        inst.sql(f"CREATE TABLE wf.t{i} (id INT PRIMARY KEY, pad CHAR(255)) ENGINE=InnoDB",
                 f"INSERT INTO wf.t{i} SELECT seq, REPEAT('a', 255) FROM wf.seq_1_to_50000",
                 f"UPDATE wf.t{i} SET pad = REPEAT('b', 255)")

    waits = 0
    for _ in range(rounds):
        inst.sql("DROP DATABASE IF EXISTS wf", "CREATE DATABASE wf")
        threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = inst.sql("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_wait_free'")[0]
        waits = int(got[0]["Value"])
        if waits:
            break
    return waits
