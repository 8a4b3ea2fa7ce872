"""MariaDB instances for the MySQL plugin's tests.

mariadb-install-db runs once per session into a template data directory; each instance
starts from a copy of it on a free loopback port in its own temporary directory, and
only the processes started here are stopped here. The machine's shared MariaDB on
127.0.0.1:3306 is only read.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack_ai.plugins import PluginManager
from tests.conftest import require
from tests.mysql.mysql_helpers import (
    DURABLE_ARGS,
    INSTALL_DB,
    MARIADBD,
    WEAK_ARGS,
    Instance,
    count_rows,
    wait_replica,
)


@pytest.fixture(scope="session")
def mariadb_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require(INSTALL_DB is not None and Path(MARIADBD).exists(),
            "mariadb-install-db / mariadbd not installed")
    base = tmp_path_factory.mktemp("mariadb-template")
    data = base / "data"
    subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={data}", "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db",
                    "--innodb-log-file-size=8M"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return data


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require(shutil.which("openssl") is not None, "openssl not installed")
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN=ksa-test-{ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
        "server.key", "-out", "server.csr")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "san.ext")
    return {k: str(d / f) for k, f in (("ca", "ca.pem"), ("other_ca", "other-ca.pem"),
                                       ("cert", "server.pem"), ("key", "server.key"))}


@pytest.fixture(scope="session")
def instances(tmp_path_factory: pytest.TempPathFactory, mariadb_template: Path,
              tls_files: dict[str, str]) -> Iterator[dict[str, Instance]]:
    """All instances, started at once (their start-ups overlap), stopped at the end."""
    base = tmp_path_factory.mktemp("mariadb")
    started: dict[str, Instance] = {}
    try:
        # performance_schema on (MariaDB ships it off), statement latency histogram,
        # a low max_connections, and TLS
        started["ps"] = Instance("ps", base, mariadb_template, [
            "--performance-schema=ON", "--plugin-load-add=query_response_time",
            "--query-response-time-stats=ON", "--max-connections=12",
            f"--ssl-ca={tls_files['ca']}", f"--ssl-cert={tls_files['cert']}",
            f"--ssl-key={tls_files['key']}"])
        started["source"] = Instance("source", base, mariadb_template, [
            "--server-id=1", "--log-bin=mysql-bin", "--binlog-format=ROW"])
        started["replica"] = Instance("replica", base, mariadb_template, [
            "--server-id=2", "--read-only=ON", "--relay-log=relay-bin"])
        # durability, accounts and refusals: settings a shared server must not get
        started["weak"] = Instance("weak", base, mariadb_template, WEAK_ARGS)
        # the healthy look-alike of each of them
        started["durable"] = Instance("durable", base, mariadb_template, DURABLE_ARGS)
        for inst in started.values():
            inst.wait()
        yield started
    finally:
        for inst in started.values():
            inst.stop()


@pytest.fixture(scope="session")
def ps(instances: dict[str, Instance]) -> Instance:
    return instances["ps"]


@pytest.fixture(scope="session")
def weak(instances: dict[str, Instance]) -> Instance:
    return instances["weak"]


@pytest.fixture(scope="session")
def durable(instances: dict[str, Instance]) -> Instance:
    return instances["durable"]


@pytest.fixture(scope="session")
def replication(instances: dict[str, Instance]) -> tuple[Instance, Instance]:
    source, replica = instances["source"], instances["replica"]
    source.sql("CREATE DATABASE IF NOT EXISTS app",
               "CREATE TABLE IF NOT EXISTS app.items (id INT PRIMARY KEY, v INT) ENGINE=InnoDB",
               "INSERT INTO app.items VALUES (1, 1), (2, 2)")
    replica.sql(f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={source.port}, "
                "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=slave_pos, "
                "MASTER_CONNECT_RETRY=1",
                "START SLAVE")
    wait_replica(replica, lambda r: r["Slave_SQL_Running"] == "Yes"
                 and r["Slave_IO_Running"] == "Yes" and r["Seconds_Behind_Master"] == 0)
    wait_replica(replica, lambda r: count_rows(replica, "app.items") == 2)
    return source, replica


@pytest.fixture(scope="session")
def manager() -> Iterator[PluginManager]:
    m = PluginManager()
    yield m
    m.stop_all()  # closes the plugin's connection


