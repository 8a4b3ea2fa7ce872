"""TLS: sslmode verify-full against the fixture's primary with a server certificate from
a CA of the test's own, and a client certificate as the only credential (pg_hba ``cert``);
a wrong CA is refused with the reason, never with a secret."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kubestack_ai.plugins import PluginManager, Status
from tests.conftest import require
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import diagnose, endpoint, finding, sql, target


def _openssl(d: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tls(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require(shutil.which("openssl") is not None, "openssl not installed")
    d = tmp_path_factory.mktemp("pgtls")
    for ca in ("ca", "other-ca"):
        _openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 f"/CN=ksa-{ca}", "-keyout", f"{ca}.key", "-out", f"{ca}.pem")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn, ext in (("server", "localhost", ["-extfile", "san.ext"]), ("client", "ksa_cert", [])):
        _openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}", "-keyout",
                 f"{name}.key", "-out", f"{name}.csr")
        _openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext)
    # the server's copies, readable by the server's user only
    for f in ("server.pem", "server.key", "ca.pem"):
        shutil.copy(d / f, pg.dir / f)
        if os.geteuid() == 0:
            shutil.chown(pg.dir / f, "postgres")
        os.chmod(pg.dir / f, 0o600)
    os.chmod(d / "client.key", 0o600)
    hba = pg.data / "pg_hba.conf"
    text = hba.read_text()
    if "ksa_cert" not in text:
        hba.write_text("hostssl all ksa_cert 127.0.0.1/32 cert\n"
                       "host all ksa_cert 127.0.0.1/32 reject\n" + text)
    sql(pg, "DROP ROLE IF EXISTS ksa_cert", "CREATE ROLE ksa_cert LOGIN IN ROLE pg_monitor",
        f"ALTER SYSTEM SET ssl_cert_file = '{pg.dir / 'server.pem'}'",
        f"ALTER SYSTEM SET ssl_key_file = '{pg.dir / 'server.key'}'",
        f"ALTER SYSTEM SET ssl_ca_file = '{pg.dir / 'ca.pem'}'",
        "ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()")
    return {k: str(d / f) for k, f in (("ca", "ca.pem"), ("other_ca", "other-ca.pem"),
                                       ("cert", "client.pem"), ("key", "client.key"))}


def test_verify_full_with_a_client_certificate(manager: PluginManager, pg: PgServer,
                                               tls: dict[str, str]) -> None:
    t = target(endpoint(pg), name="tls", auth={"username": "ksa_cert"},
               tls={"ca_file": tls["ca"], "cert_file": tls["cert"], "key_file": tls["key"]})
    r = diagnose(manager, t, "connection", "security")
    assert r.errors == {} and r.outcome == "completed", r.errors
    assert "postgres.connection.auth_failed" not in {f.code for f in r.findings}
    # without the certificate the role is refused (pg_hba: cert only)
    bare = diagnose(manager, target(endpoint(pg), name="bare", auth={"username": "ksa_cert"},
                                    tls={"ca_file": tls["ca"]}), "connection")
    assert bare.status == Status.CRITICAL
    assert bare.findings[0].code in ("postgres.connection.auth_failed",
                                     "postgres.connection.unreachable")


def test_a_server_from_another_ca_is_refused(manager: PluginManager, pg: PgServer,
                                             tls: dict[str, str]) -> None:
    t = target(endpoint(pg), name="wrong-ca", auth={"username": "ksa_cert"},
               tls={"ca_file": tls["other_ca"], "cert_file": tls["cert"], "key_file": tls["key"]})
    f = finding(diagnose(manager, t, "connection"), "postgres.connection.unreachable")
    assert "certificate verify failed" in f.evidence["error"]
