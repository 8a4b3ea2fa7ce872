"""Issue 24's Kafka verdicts, on consumers of a Tansu broker: a group that committed
once, left and lags (item 4), and lag that grows at every commit over runs (item 5),
each with the healthy look-alike that must stay quiet."""

from __future__ import annotations

import time
from typing import Any

from kubestack_ai.plugins import PluginConfig, PluginManager, Severity, Snapshot
from kubestack_ai.plugins.models import utcnow

from .kafka_helpers import (
    Producer,
    TimerConsumer,
    commit_offsets,
    create_topic,
    diagnose,
    produce,
    target,
    uniq,
)

BURROW = ("kafka.consumer.group_stop", "kafka.consumer.group_stall",
          "kafka.consumer.group_rewind", "kafka.consumer.group_warn")


def _runs(manager: PluginManager, bootstrap: str, n: int, gap: float) -> list[Any]:
    history: tuple[Snapshot, ...] = ()
    out = []
    for i in range(n):
        if i:
            time.sleep(gap)
        r = diagnose(manager, target(bootstrap), "consumer", history=history)
        assert not r.errors, r.errors
        history = (*history, Snapshot(at=utcnow(), metrics=r.metrics))[-10:]
        out.append(r)
    return out


def _status(r: Any, group: str) -> list[Any]:
    return [f for f in r.findings if f.code in BURROW and f.evidence.get("group") == group]


# -- item 4: a consumer that died with lag --------------------------------------------------

def test_empty_group_that_committed_once_and_lags_is_stop_within_two_runs(
        broker, manager) -> None:  # type: ignore[no-untyped-def]
    topic, lagging, done = uniq("orders"), uniq("invoicer"), uniq("archiver")
    create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, {0: 6, 1: 4})
    commit_offsets(broker.bootstrap, lagging, topic, {0: 2, 1: 4})  # lags 4 on partition 0
    commit_offsets(broker.bootstrap, done, topic, {0: 6, 1: 4})     # the look-alike: caught up
    runs = _runs(manager, broker.bootstrap, 2, 0.3)
    for r in runs:
        assert r.metrics["group_state"][lagging] == r.metrics["group_state"][done] == "Empty"
    first = _status(runs[0], lagging)
    assert first and first[0].code == "kafka.consumer.group_stop"
    assert first[0].severity is Severity.WARNING and first[0].evidence["window"] == "new"
    f = _status(runs[1], lagging)[0]
    assert f.code == "kafka.consumer.group_stop" and f.severity is Severity.CRITICAL
    assert f.evidence["window"] == "history" and f.evidence["lag"] == 4
    part = f.evidence["partitions"][f"{topic}:0"]
    assert part["complete"] == 0.1 and part["offsets"] == [2]  # one commit of a 10-ring
    assert list(f.evidence["partitions"]) == [f"{topic}:0"]  # the caught-up one is not named
    # the caught-up group that left: quiet
    for r in runs:
        assert r.metrics["group_status"][done] == "OK" and not _status(r, done)


# -- item 5: lag that grows at every commit ---------------------------------------------------

def _slow_consumer_runs(bootstrap: str, delay: float, n: int) -> tuple[list[Any], str]:
    """A consumer that commits every 0.5 s, reading 10 records a poll and pausing
    ``delay`` after each, against a producer of ~1 record / 10 ms; ``n`` runs 1.5 s apart
    (the fleet's interval, shrunk), with the plugin told the consumers' commit interval."""
    topic, group = uniq("clicks"), uniq("sessionizer")
    create_topic(broker_bootstrap := bootstrap, topic, 1)
    m = PluginManager()
    m.load_builtin("kafka-diagnostics", PluginConfig(thresholds={
        "lag_sample_seconds": 0.4, "burrow_commit_interval_seconds": 0.5}))
    producer = Producer(broker_bootstrap, topic, 1, every=0.01)
    consumer = TimerConsumer(broker_bootstrap, group, topic, every=0.5, max_records=10,
                             delay=delay)
    try:
        time.sleep(1.0)
        return _runs(m, broker_bootstrap, n, 1.5), group
    finally:
        consumer.close()
        producer.close()
        m.stop_all()


def test_lag_growing_at_every_commit_is_warn_from_the_second_run(broker) -> None:  # type: ignore[no-untyped-def]
    runs, group = _slow_consumer_runs(broker.bootstrap, 0.5, 5)  # ~20 msg/s out
    lags = [r.metrics["group_lag"][group] for r in runs]
    assert lags == sorted(lags) and lags[0] > 0, lags  # the fault: it grows, never zero
    for r in runs[1:]:
        found = _status(r, group)
        assert [f.code for f in found] == ["kafka.consumer.group_warn"], (lags, found)
        assert found[0].severity is Severity.WARNING
        lags_in_ring = next(iter(found[0].evidence["partitions"].values()))["lags"]
        assert lags_in_ring == sorted(lags_in_ring) and min(lags_in_ring) > 0


def test_consumer_that_keeps_up_at_the_same_traffic_stays_ok(broker) -> None:  # type: ignore[no-untyped-def]
    runs, group = _slow_consumer_runs(broker.bootstrap, 0.0, 5)  # no pause: it keeps up
    for r in runs:
        assert not [f for f in _status(r, group) if f.severity is not Severity.INFO], \
            [(r.metrics["group_lag"][group], _status(r, group)) for r in runs]
    assert all(r.metrics["group_status"][group] == "OK" for r in runs[1:])
