"""SASL logins, refused credentials and unreachable bootstrap servers."""

from __future__ import annotations

import pytest

from kubestack_ai.plugins import Severity, Status
from tests.conftest import free_port

from .kafka_helpers import SASL_PASSWORD, SASL_USER, diagnose, target


def sasl_target(port: int, mechanism: str, ref: str = "env:KSA_TEST_KAFKA_PW"):  # type: ignore[no-untyped-def]
    return target(f"127.0.0.1:{port}",
                  auth={"username": SASL_USER, "password": ref, "mechanism": mechanism})


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_sasl_login_succeeds(sasl_front, manager, monkeypatch, mechanism) -> None:
    monkeypatch.setenv("KSA_TEST_KAFKA_PW", SASL_PASSWORD)
    r = diagnose(manager, sasl_target(sasl_front.port, mechanism), "broker", "topic")
    assert not r.errors, r.errors
    assert r.metrics["brokers"] == 1
    assert not [f for f in r.findings if f.category == "connection"]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_is_a_clear_auth_finding(sasl_front, manager, monkeypatch, mechanism) -> None:
    monkeypatch.setenv("KSA_TEST_KAFKA_PW", "not-the-password")
    r = diagnose(manager, sasl_target(sasl_front.port, mechanism), timeout=15)
    assert r.status is Status.CRITICAL
    (f,) = r.findings
    assert f.code == "kafka.connection.auth_failed"
    assert f.severity is Severity.CRITICAL
    assert f"SASL {mechanism} authentication as '{SASL_USER}' was refused" in f.evidence["error"]
    assert "not-the-password" not in r.model_dump_json()


def test_tansu_itself_refuses_an_unknown_scram_user(auth_broker, manager, monkeypatch) -> None:
    monkeypatch.setenv("KSA_TEST_KAFKA_PW", "whatever")
    r = diagnose(manager, sasl_target(auth_broker.port, "SCRAM-SHA-512"), timeout=15)
    (f,) = r.findings
    assert f.code == "kafka.connection.auth_failed"
    assert "SASL SCRAM-SHA-512 authentication as 'alice' was refused" in f.evidence["error"]
    assert "whatever" not in r.model_dump_json()


def test_unreachable_bootstrap_is_a_critical_finding(manager) -> None:
    port = free_port()  # nothing listens there
    r = diagnose(manager, target(f"127.0.0.1:{port}"), timeout=10)
    assert r.status is Status.CRITICAL
    (f,) = r.findings
    assert f.code == "kafka.connection.unreachable"
    assert f.evidence["endpoints"] == [f"127.0.0.1:{port}"]
    assert f"127.0.0.1:{port}" in f.evidence["error"]
    assert r.duration < 10


def test_missing_secret_is_reported_without_connecting(manager, monkeypatch) -> None:
    monkeypatch.delenv("KSA_TEST_KAFKA_PW", raising=False)
    r = diagnose(manager, sasl_target(free_port(), "SCRAM-SHA-256"), timeout=10)
    # a configuration error, not an outage: unknown, no connection finding
    assert r.status is Status.UNKNOWN and r.outcome == "failed" and not r.findings
    assert "environment variable KSA_TEST_KAFKA_PW is not set" in r.errors["_config"]


def test_unknown_mechanism_is_refused_clearly(manager, monkeypatch) -> None:
    monkeypatch.setenv("KSA_TEST_KAFKA_PW", "x")
    r = diagnose(manager, sasl_target(free_port(), "GSSAPI"), timeout=10)
    assert r.status is Status.UNKNOWN and not r.findings
    assert "SASL mechanism 'GSSAPI' is not supported" in r.errors["_config"]


def test_tls_with_the_ca_file(tls_only_front, tls_files, manager) -> None:
    r = diagnose(manager, target(f"127.0.0.1:{tls_only_front.port}",
                                 tls={"ca_file": tls_files["ca"]}), "broker")
    assert not r.errors, r.errors
    assert r.metrics["brokers"] == 1


def test_tls_with_an_unknown_ca_names_the_handshake(tls_only_front, manager) -> None:
    r = diagnose(manager, target(f"127.0.0.1:{tls_only_front.port}", tls={}), timeout=10)
    (f,) = r.findings
    assert f.code == "kafka.connection.unreachable"
    assert "TLS handshake failed" in f.evidence["error"]
    assert "CERTIFICATE_VERIFY_FAILED" in f.evidence["error"]


def test_tls_without_verification(tls_only_front, manager) -> None:
    r = diagnose(manager, target(f"127.0.0.1:{tls_only_front.port}", tls={"verify": False}),
                 "broker")
    assert not r.errors and r.metrics["brokers"] == 1


def test_scram_over_tls(tls_front, tls_files, manager, monkeypatch) -> None:
    monkeypatch.setenv("KSA_TEST_KAFKA_PW", SASL_PASSWORD)
    tgt = target(f"127.0.0.1:{tls_front.port}", tls={"ca_file": tls_files["ca"]},
                 auth={"username": SASL_USER, "password": "env:KSA_TEST_KAFKA_PW",
                       "mechanism": "SCRAM-SHA-512"})
    r = diagnose(manager, tgt, "broker", "topic")
    assert not r.errors, r.errors
    assert r.metrics["brokers"] == 1


def test_a_broker_that_goes_away_between_runs_is_unreachable(tmp_path, manager) -> None:
    from .kafka_helpers import Tansu

    b = Tansu(tmp_path)
    tgt = target(b.bootstrap)
    try:
        assert not diagnose(manager, tgt, "broker").errors
    finally:
        b.stop()
    r = diagnose(manager, tgt, "broker", timeout=10)
    assert [f.code for f in r.findings] == ["kafka.connection.unreachable"]


def test_client_certificate(mtls_front, tls_files, manager) -> None:
    tgt = target(f"127.0.0.1:{mtls_front.port}",
                 tls={"ca_file": tls_files["ca"], "cert_file": tls_files["client_cert"],
                      "key_file": tls_files["client_key"]})
    r = diagnose(manager, tgt, "broker")
    assert not r.errors and r.metrics["brokers"] == 1


def test_client_certificate_with_an_encrypted_key_from_a_secret_reference(
        mtls_front, tls_files, manager, monkeypatch) -> None:
    from .kafka_helpers import CLIENT_KEY_PASSWORD

    monkeypatch.setenv("KSA_TEST_KEY_PW", CLIENT_KEY_PASSWORD)
    tgt = target(f"127.0.0.1:{mtls_front.port}",
                 tls={"ca_file": tls_files["ca"], "cert_file": tls_files["client_cert"],
                      "key_file": tls_files["client_key_encrypted"],
                      "key_password": "env:KSA_TEST_KEY_PW"})
    r = diagnose(manager, tgt, "broker")
    assert not r.errors and r.metrics["brokers"] == 1
    assert CLIENT_KEY_PASSWORD not in r.model_dump_json()


def test_missing_client_certificate_is_refused(mtls_front, tls_files, manager) -> None:
    r = diagnose(manager, target(f"127.0.0.1:{mtls_front.port}", tls={"ca_file": tls_files["ca"]}),
                 timeout=10)
    assert r.status is Status.CRITICAL
    assert r.findings[0].code in ("kafka.connection.unreachable", "kafka.connection.timeout")


def test_health_check_connects_only(broker, manager) -> None:
    ok = manager.health_check(target(broker.bootstrap))
    assert ok.status is Status.HEALTHY and ok.categories == ("health",)
    down = manager.health_check(target(f"127.0.0.1:{free_port()}"))
    assert down.status is Status.CRITICAL
    assert down.findings[0].code == "kafka.connection.unreachable"
