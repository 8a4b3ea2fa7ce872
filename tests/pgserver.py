"""A PostgreSQL server of the test's own, on a free loopback port, that the test may
stop, hang (SIGSTOP every process of it) and restart: the machine's shared server must
never be touched that way.

PostgreSQL refuses to run as root, so initdb and postgres run as the ``postgres`` user
(``runuser``) when the tests run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port, port_open

BINDIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def available() -> bool:
    return bool(BINDIRS) and os.path.exists(os.path.join(BINDIRS[-1], "postgres"))


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PgServer:
    def __init__(self) -> None:
        self.bindir = BINDIRS[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="ksa-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(_as_postgres([f"{self.bindir}/initdb", "-D", str(self.data), "-A", "trust",
                                     "-U", "postgres", "--no-sync", "-E", "UTF8"]),
                       check=True, capture_output=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 20) -> None:
        log = open(self.dir / "postgres.log", "ab")  # noqa: SIM115 (the server keeps it)
        self.proc = subprocess.Popen(
            _as_postgres([f"{self.bindir}/postgres", "-D", str(self.data), "-p", str(self.port),
                          "-h", "127.0.0.1", "-k", str(self.dir), "-c", "fsync=off",
                          "-c", "max_connections=200"]),
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.ready():
                return
            if self.proc.poll() is not None:
                raise AssertionError((self.dir / "postgres.log").read_text()[-2000:])
            time.sleep(0.1)
        raise AssertionError("own PostgreSQL not ready")

    def ready(self) -> bool:
        if not port_open("127.0.0.1", self.port):
            return False
        r = subprocess.run([f"{self.bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port),
                            "-t", "1", "-U", "postgres"], capture_output=True)
        return r.returncode == 0

    def pids(self) -> list[int]:
        """The postmaster and every backend and helper process it started."""
        pm = self.postmaster()
        if pm is None:
            return []
        out = subprocess.run(["pgrep", "-P", str(pm)], capture_output=True, text=True)
        return [pm, *(int(x) for x in out.stdout.split())]

    def postmaster(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def hang(self) -> None:
        """Accepts connections (the kernel does), never answers."""
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        # runuser stops itself when its child is stopped (job control, as su does)
        pids = self.pids() + ([self.proc.pid] if self.proc is not None else [])
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Fast shutdown (the server is down: connections refused)."""
        self.resume()
        if self.proc is not None and self.proc.poll() is None:
            # runuser forwards SIGINT to postgres: fast shutdown
            pm = self.postmaster()
            if pm is not None:
                os.kill(pm, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
