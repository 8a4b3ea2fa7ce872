"""The request layer against a real broker: batches, failures kept per request."""

from __future__ import annotations

import time

from kafka.protocol.admin import ListGroupsRequest

from kubestack_ai.plugins import Deadline
from kubestack_ai.plugins.kafka import collect
from kubestack_ai.plugins.kafka.wire import RequestFailed, Wire

from .kafka_helpers import target


def test_a_batch_keeps_each_failure_in_its_place(broker) -> None:
    d = Deadline(20)
    wire = Wire.open(target(broker.bootstrap), d, max_in_flight=4)
    try:
        cluster = collect.metadata(wire, d)
        (node,) = cluster.brokers
        calls = [(node, ListGroupsRequest[2]()) for _ in range(10)]
        calls.insert(3, (node + 9999, ListGroupsRequest[2]()))  # no such broker
        t0 = time.monotonic()
        out = wire.call_many(calls, d)
        assert time.monotonic() - t0 < 2  # the unknown broker is not waited for
    finally:
        wire.close()
    assert isinstance(out[3], RequestFailed)
    assert "not in the cluster metadata" in str(out[3])
    assert all(r.error_code == 0 for i, r in enumerate(out) if i != 3)


def test_a_port_that_accepts_and_never_answers_is_named_as_such(broker) -> None:
    """A listener that accepts TCP and stays silent (a hung broker, something else on
    the port): not "cannot connect" but "not a Kafka broker", within FIRST_REPLY_WAIT."""
    import socket
    import threading

    from kubestack_ai.plugins import ConnectError

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    port = silent.getsockname()[1]
    try:
        t0 = time.monotonic()
        try:
            Wire.open(target(f"127.0.0.1:{port}"), Deadline(10), request_timeout_s=5.0)
            raise AssertionError("a silent port was taken for a broker")
        except ConnectError as e:
            msg = str(e)
        assert time.monotonic() - t0 < 3
        assert ("not a Kafka broker: it accepted the connection but sent no ApiVersions reply "
                "within 1.5 s") in msg, msg
        assert held, "the port did accept the connection"
        # and the diagnosis's finding says so in its title
        from kubestack_ai.plugins import PluginConfig, PluginManager

        m = PluginManager()
        m.load_builtin("kafka-diagnostics", PluginConfig(thresholds={"request_timeout_s": 1.0}))
        try:
            r = m.diagnose(target(f"127.0.0.1:{port}"), timeout=10)
        finally:
            m.stop_all()
        (f,) = r.findings
        assert f.code == "kafka.connection.not_kafka"
        assert f.title.startswith("Not a Kafka broker: "), f.title
        assert "sent no ApiVersions reply" in f.evidence["error"]
        # the healthy look-alike: a real broker on the same path answers
        Wire.open(target(broker.bootstrap), Deadline(10), request_timeout_s=1.0).close()
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        silent.close()
