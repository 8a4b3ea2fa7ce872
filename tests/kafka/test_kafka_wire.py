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
