"""Fixtures: Tansu brokers on free loopback ports (session scope, stopped by the fixture
that started them) and a plugin manager."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator

import pytest

from kubestack_ai.plugins import PluginConfig, PluginManager
from tests.conftest import free_port, require

from .kafka_helpers import CLIENT_KEY_PASSWORD, SASL_PASSWORD, SASL_USER, Tansu
from .sasl_front import SaslFront


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    b = Tansu(tmp_path_factory.mktemp("tansu"))
    yield b
    b.stop()


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    """Tansu requiring SASL: it has no users, so every login is refused by Tansu itself."""
    b = Tansu(tmp_path_factory.mktemp("tansu-auth"), "--authentication")
    yield b
    b.stop()


@pytest.fixture(scope="session")
def sasl_front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslFront]:
    """A plain Tansu behind a SASL front that knows alice (see sasl_front.py for why)."""
    front_port = free_port()
    b = Tansu(tmp_path_factory.mktemp("tansu-sasl"), advertised_port=front_port)
    front = SaslFront(front_port, ("127.0.0.1", b.port), {SASL_USER: SASL_PASSWORD})
    yield front
    front.close()
    b.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1, made with the openssl command."""
    require(shutil.which("openssl") is not None, "the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")
    ca, ca_key, crt, key, csr = (str(d / n) for n in ("ca.pem", "ca.key", "server.pem",
                                                     "server.key", "server.csr"))
    ccrt, ckey, ccsr, ckey_enc = (str(d / n) for n in ("client.pem", "client.key", "client.csr",
                                                     "client-enc.key"))
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for cmd in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "2", "-subj", "/CN=ksa-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", str(d / "ext.cnf")],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", ckey, "-out", ccsr,
         "-subj", "/CN=ksa-client"],
        ["x509", "-req", "-in", ccsr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", ccrt, "-days", "2"],
        ["pkey", "-in", ckey, "-aes256", "-passout", f"pass:{CLIENT_KEY_PASSWORD}", "-out", ckey_enc],
    ):
        subprocess.run(["openssl", *cmd], check=True, capture_output=True, timeout=60)
    return {"ca": ca, "cert": crt, "key": key, "client_cert": ccrt, "client_key": ckey,
            "client_key_encrypted": ckey_enc}


@pytest.fixture(scope="session")
def mtls_front(tmp_path_factory: pytest.TempPathFactory,
               tls_files: dict[str, str]) -> Iterator[SaslFront]:
    """TLS that requires a client certificate signed by the test CA."""
    front_port = free_port()
    b = Tansu(tmp_path_factory.mktemp("tansu-mtls"), advertised_port=front_port)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls_files["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
    front = SaslFront(front_port, ("127.0.0.1", b.port), {}, tls=ctx)
    yield front
    front.close()
    b.stop()


@pytest.fixture(scope="session")
def tls_front(tmp_path_factory: pytest.TempPathFactory,
              tls_files: dict[str, str]) -> Iterator[SaslFront]:
    """A plain Tansu behind TLS + SASL (alice); see sasl_front.py for why not Tansu's TLS."""
    front_port = free_port()
    b = Tansu(tmp_path_factory.mktemp("tansu-tls"), advertised_port=front_port)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
    front = SaslFront(front_port, ("127.0.0.1", b.port), {SASL_USER: SASL_PASSWORD}, tls=ctx)
    yield front
    front.close()
    b.stop()


@pytest.fixture(scope="session")
def tls_only_front(tmp_path_factory: pytest.TempPathFactory,
                   tls_files: dict[str, str]) -> Iterator[SaslFront]:
    front_port = free_port()
    b = Tansu(tmp_path_factory.mktemp("tansu-tls-only"), advertised_port=front_port)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
    front = SaslFront(front_port, ("127.0.0.1", b.port), {}, tls=ctx)
    yield front
    front.close()
    b.stop()


@pytest.fixture
def manager() -> Iterator[PluginManager]:
    m = PluginManager()
    # the test consumers commit every 0.1-0.2 s (TimerConsumer) and are up to ~0.3 s behind
    # the log when they do: the plugin is told a commit interval that covers both
    m.load_builtin("kafka-diagnostics", PluginConfig(thresholds={
        "lag_sample_seconds": 0.4, "burrow_commit_interval_seconds": 0.4}))
    yield m
    m.stop_all()


