"""PostgreSQL clusters of the postgres plugin's tests: a primary started once per test
session on a free loopback port (tests/pgserver.py), a standby cloned from it with
``pg_basebackup -R``, and helpers to hold sessions open in seeded states. The machine's
shared server on 127.0.0.1:5432 is only read."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from kubestack_ai.plugins import DiagnoseOptions, DiagnosticResult, MiddlewareTarget, PluginManager
from tests.conftest import free_port
from tests.pgserver import PgServer, _as_postgres

# prepared transactions allowed; autovacuum slow to wake, so a seeded dead tuple count
# stays as seeded while a test reads it; pg_stat_statements loaded; WAL archived (to
# nowhere: a test makes the archive command fail and then succeed again)
SETTINGS = {"max_prepared_transactions": "10", "autovacuum_naptime": "600",
            "shared_preload_libraries": "pg_stat_statements", "archive_mode": "on",
            "archive_command": "/bin/true", "deadlock_timeout": "100ms"}


def start_primary() -> PgServer:
    srv = PgServer()
    with open(srv.data / "postgresql.auto.conf", "a") as fh:
        for k, v in SETTINGS.items():
            fh.write(f"{k} = '{v}'\n")
    srv.start()
    return srv


class Standby(PgServer):
    """A standby of ``primary``: pg_basebackup -R with a physical slot of its own."""

    def __init__(self, primary: PgServer, slot: str) -> None:  # noqa: D107 (no initdb)
        self.bindir = primary.bindir
        self.dir = Path(tempfile.mkdtemp(prefix="ksa-pg-standby-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.proc = None
        subprocess.run(_as_postgres([f"{self.bindir}/pg_basebackup", "-h", "127.0.0.1", "-p",
                                     str(primary.port), "-U", "postgres", "-D", str(self.data),
                                     "-R", "-C", "-S", slot, "-X", "stream", "--no-sync"]),
                       check=True, capture_output=True, timeout=60)


def connect(srv: PgServer | str, **kw: Any) -> psycopg.Connection[Any]:
    port = srv.port if isinstance(srv, PgServer) else int(srv.rsplit(":", 1)[1])
    kw.setdefault("user", "postgres")
    return psycopg.connect(host="127.0.0.1", port=port, dbname=kw.pop("dbname", "postgres"),
                           autocommit=kw.pop("autocommit", True), **kw)


def sql(srv: PgServer, *statements: str) -> list[Any]:
    out = []
    with connect(srv) as c:
        for s in statements:
            cur = c.execute(s)
            out.append(cur.fetchall() if cur.description else None)
    return out


def endpoint(srv: PgServer) -> str:
    return f"127.0.0.1:{srv.port}"


def target(*endpoints: str, **kw: Any) -> MiddlewareTarget:
    data: dict[str, Any] = {"type": "postgres", "endpoints": list(endpoints)}
    data.update(kw)
    return MiddlewareTarget.model_validate(data)


def diagnose(manager: PluginManager, t: MiddlewareTarget, *categories: str,
             **kw: Any) -> DiagnosticResult:
    return manager.diagnose(t, DiagnoseOptions(categories=categories, **kw), timeout=30)


def codes(result: DiagnosticResult) -> set[str]:
    return {f.code for f in result.findings}


def findings(result: DiagnosticResult, code: str) -> list[Any]:
    return [f for f in result.findings if f.code == code]


def finding(result: DiagnosticResult, code: str) -> Any:
    found = findings(result, code)
    assert found, f"no {code} in {sorted(codes(result))}; errors={result.errors}"
    return found[0]


def wait_until(pred: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
