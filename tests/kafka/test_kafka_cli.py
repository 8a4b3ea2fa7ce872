"""``ksa diagnose kafka HOST:PORT --json`` as a user runs it: a subprocess, its JSON and
its exit status (0 healthy, 1 warning, 2 critical)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import free_port

from .kafka_helpers import Tansu, commit_offsets, create_topic, produce, uniq


@pytest.fixture(scope="module")
def fresh_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    b = Tansu(tmp_path_factory.mktemp("tansu-cli"))
    yield b
    b.stop()


def ksa(*args: str) -> tuple[int, str, str]:
    p = subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_empty_cluster_is_healthy(fresh_broker: Tansu) -> None:
    rc, out, err = ksa("diagnose", "kafka", fresh_broker.bootstrap, "--json")
    assert rc == 0, out + err
    r = json.loads(out)
    assert r["plugin_id"] == "kafka-diagnostics"
    assert r["status"] == "healthy"
    assert r["metrics"]["brokers"] == 1
    assert r["categories"] == ["broker", "consumer", "topic"]


def test_one_broker_replication_factor_one_is_info_and_lag_exits_with_warning(
        fresh_broker: Tansu) -> None:
    topic, group = uniq("cli"), uniq("cli-group")
    create_topic(fresh_broker.bootstrap, topic, 2)
    # one broker: replication factor 1 is the only one possible, said as INFO (exit 0)
    rc, out, err = ksa("diagnose", "kafka", fresh_broker.bootstrap, "--json", "-c", "topic")
    assert rc == 0, out + err
    r = json.loads(out)
    assert r["status"] == "healthy"
    (f,) = [f for f in r["findings"] if f["code"] == "kafka.topic.replication_factor_one"]
    assert f["severity"] == "info" and topic in f["evidence"]["topics"]
    assert "no other factor is possible" in f["title"]
    # a group lagging past the threshold: a warning, exit 1
    produce(fresh_broker.bootstrap, topic, {0: 5})
    commit_offsets(fresh_broker.bootstrap, group, topic, {0: 1})
    rc, text, _ = ksa("diagnose", "kafka", fresh_broker.bootstrap, "-c", "consumer",
                      "-t", "group_lag_warning=3")
    assert rc == 1 and "kafka.consumer.lag_high" in text and group in text, text


def test_unreachable_bootstrap_exits_critical() -> None:
    port = free_port()
    rc, out, _ = ksa("diagnose", "kafka", f"127.0.0.1:{port}", "--json", "--timeout", "10")
    assert rc == 2
    r = json.loads(out)
    assert [f["code"] for f in r["findings"]] == ["kafka.connection.unreachable"]


def test_unknown_category_is_an_error(fresh_broker: Tansu) -> None:
    rc, out, err = ksa("diagnose", "kafka", fresh_broker.bootstrap, "--json", "-c", "memory")
    assert rc == 3
    assert "unknown categories memory (known: broker, consumer, topic)" in out + err


def test_sasl_flags_with_a_secret_reference(sasl_front) -> None:
    import os

    from .kafka_helpers import SASL_PASSWORD, SASL_USER

    env = {**os.environ, "KSA_TEST_KAFKA_PW": SASL_PASSWORD}
    args = [sys.executable, "-m", "kubestack_ai.ksa", "diagnose", "kafka", f"127.0.0.1:{sasl_front.port}",
            "--json", "-c", "broker", "--user", SASL_USER, "--password-ref",
            "env:KSA_TEST_KAFKA_PW", "--sasl-mechanism", "SCRAM-SHA-256"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["metrics"]["brokers"] == 1
    env["KSA_TEST_KAFKA_PW"] = "Wr0ng-Pa55"
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 2
    (f,) = json.loads(p.stdout)["findings"]
    assert f["code"] == "kafka.connection.auth_failed"
    assert "Wr0ng-Pa55" not in p.stdout + p.stderr
