"""Burrow's verdicts on real consumers (kafka-python, in a group on Tansu) committing on
a timer: healthy at constant traffic, stopped, stuck, replaying after being caught up,
rewound while lagging, and a group that stopped committing long ago. Each verdict is
checked against Burrow's evaluator applied to the consumer's own commits
(burrow_reference.py: each commit with the broker's high-water mark read before it)."""

from __future__ import annotations

import time
from typing import Any

from kubestack_ai.plugins import PluginManager, Severity, Snapshot
from kubestack_ai.plugins.models import utcnow

from . import burrow_reference as ref
from .kafka_helpers import (
    Producer,
    Tansu,
    TimerConsumer,
    commit_offsets,
    create_topic,
    diagnose,
    produce,
    target,
    uniq,
)

GAP = 0.4  # seconds between runs (a fleet's interval, shrunk)


class Runs:
    """Diagnoses one after another, each given the earlier ones as history (the last
    ten, as the workers do)."""

    def __init__(self, manager: PluginManager, tgt: Any) -> None:
        self.manager, self.tgt = manager, tgt
        self.history: tuple[Snapshot, ...] = ()

    def run(self) -> Any:
        r = diagnose(self.manager, self.tgt, "consumer", history=self.history)
        assert not r.errors, r.errors
        self.history = (*self.history, Snapshot(at=utcnow(), metrics=r.metrics))[-10:]
        return r


def burrow_findings(r: Any, group: str) -> list[Any]:
    return [f for f in r.findings if f.code in ("kafka.consumer.group_stop",
                                                "kafka.consumer.group_stall",
                                                "kafka.consumer.group_rewind",
                                                "kafka.consumer.group_warn")
            and f.evidence.get("group") == group]


def reference(consumer: TimerConsumer, r: Any, group: str, topic: str) -> str:
    """Burrow's group status from the consumer's own commits."""
    now = time.time()
    statuses = []
    for p, log in consumer.log.items():
        lag = r.metrics["partition_lag"][group][f"{topic}:{p}"]
        statuses.append(ref.status(ref.commits_from_log(log), [], lag, now))
    rank = {"OK": 0, "WARN": 1, "STALL": 2, "REWIND": 3, "STOP": 4}
    return max(statuses, key=rank.__getitem__)


def test_healthy_timer_committing_consumer_at_constant_traffic_stays_ok(
        broker, manager) -> None:  # type: ignore[no-untyped-def]
    topic, group = uniq("steady"), uniq("billing")
    create_topic(broker.bootstrap, topic, 2)
    producer = Producer(broker.bootstrap, topic, 2)
    consumer = TimerConsumer(broker.bootstrap, group, topic, every=0.2)
    runs = Runs(manager, target(broker.bootstrap))
    try:
        time.sleep(1.0)
        results = []
        for _ in range(6):
            results.append(runs.run())
            time.sleep(GAP)
        want = reference(consumer, results[-1], group, topic)
    finally:
        consumer.close()
        producer.close()
    assert producer.sent > 100
    for r in results:
        assert not [f for f in burrow_findings(r, group) if f.severity is not Severity.INFO]
    for r in results[1:]:
        assert r.metrics["group_status"][group] == "OK", burrow_findings(r, group)
        assert r.metrics["window_source"][group].startswith("history")
    assert want == "OK"
    # the lag as time behind, from the rate the group commits at: well under a second's
    # worth of traffic for a consumer that keeps up
    behind = results[-1].metrics["group_time_behind_s"][group]
    assert behind is not None and 0 <= behind < 2, behind
    # each partition's ring holds a commit with lag 0: the one Burrow's escape needs
    rings = results[-1].metrics["offsets"]["g"][group][topic]
    assert len(rings) == 2
    for _part, _off, _hw, _at, commits in rings:
        assert any(lag == 0 for _t, _o, lag in commits), commits


def test_stopped_consumer_is_stop_from_its_history(broker, manager) -> None:  # type: ignore[no-untyped-def]
    topic, group = uniq("payments"), uniq("ledger")
    create_topic(broker.bootstrap, topic, 1)
    producer = Producer(broker.bootstrap, topic, 1)
    consumer = TimerConsumer(broker.bootstrap, group, topic, every=0.2)
    runs = Runs(manager, target(broker.bootstrap))
    try:
        time.sleep(0.5)
        for _ in range(4):
            runs.run()
            time.sleep(GAP)
        consumer.close()  # it leaves the group; the producer goes on
        stopped_at = time.time()
        found = None
        for _ in range(20):
            r = runs.run()
            found = [f for f in burrow_findings(r, group) if f.code.endswith("group_stop")]
            if found:
                break
            time.sleep(GAP)
        want = reference(consumer, r, group, topic)
    finally:
        producer.close()
    assert found, r.metrics["group_status"]
    f = found[0]
    assert f.severity is Severity.CRITICAL and f.evidence["window"] == "history"
    assert f.evidence["partitions"][f"{topic}:0"]["since_last_commit_s"] >= \
        f.evidence["partitions"][f"{topic}:0"]["span_s"]
    assert time.time() - stopped_at < 15
    assert want == "STOP"


def test_consumer_stuck_but_committing_is_stall(broker, manager) -> None:  # type: ignore[no-untyped-def]
    """It keeps committing the same offset (alive, stuck on something) while the
    producer goes on: STALL once the ring holds only those commits (a 4-commit ring
    here, to be quick)."""
    topic, group = uniq("stuck"), uniq("poison")
    create_topic(broker.bootstrap, topic, 1)
    producer = Producer(broker.bootstrap, topic, 1)
    consumer = TimerConsumer(broker.bootstrap, group, topic, every=0.1)
    runs = Runs(manager, target(broker.bootstrap, thresholds={"burrow_window": 4}))
    try:
        time.sleep(0.5)
        for _ in range(2):  # a ring of live commits first (healthy: the test above)
            runs.run()
            time.sleep(GAP)
        consumer.pause()
        found = None
        for _ in range(10):
            time.sleep(GAP)
            r = runs.run()
            found = [f for f in burrow_findings(r, group) if f.code.endswith("group_stall")]
            if found:
                break
        want = ref.status(ref.commits_from_log(consumer.log[0], 4), [],
                          r.metrics["partition_lag"][group][f"{topic}:0"], time.time())
    finally:
        consumer.close()
        producer.close()
    assert found, r.metrics["group_status"]
    assert found[0].severity is Severity.CRITICAL and found[0].evidence["window"] == "history"
    assert len(set(found[0].evidence["partitions"][f"{topic}:0"]["offsets"])) == 1
    assert want == "STALL"


def test_replay_after_being_caught_up_is_ok_not_rewind(broker, manager) -> None:  # type: ignore[no-untyped-def]
    """A deliberate replay: the group was caught up (a commit with lag 0), then its
    offsets go back to the start. Burrow: OK."""
    topic, group = uniq("replay"), uniq("reindex")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 300})
    consumer = TimerConsumer(broker.bootstrap, group, topic, every=0.2, max_records=1,
                             delay=0.03)
    runs = Runs(manager, target(broker.bootstrap))
    try:
        consumer.max_records = 500
        consumer.delay = 0.0
        time.sleep(1.0)
        r = runs.run()
        assert r.metrics["group_lag"][group] == 0
        time.sleep(GAP)
        runs.run()
        consumer.max_records, consumer.delay = 1, 0.05  # replay slowly: it lags meanwhile
        consumer.seek(0)
        results = []
        for _ in range(4):
            time.sleep(GAP)
            results.append(runs.run())
        want = reference(consumer, results[-1], group, topic)
    finally:
        consumer.close()
    offsets = [c[1] for c in results[-1].metrics["offsets"]["g"][group][topic][0][4]]
    assert any(b < a for a, b in zip(offsets, offsets[1:], strict=False)), offsets  # it went back
    for r in results:
        assert r.metrics["group_lag"][group] > 0
        assert r.metrics["group_status"][group] == "OK", burrow_findings(r, group)
    assert want == "OK"


def test_rewind_while_lagging_is_rewind_even_when_regained(broker, manager) -> None:  # type: ignore[no-untyped-def]
    topic, group = uniq("rewind"), uniq("slow")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 200})
    producer = Producer(broker.bootstrap, topic, 1, every=0.01)
    consumer = TimerConsumer(broker.bootstrap, group, topic, every=0.2, max_records=1,
                             delay=0.05)  # ~20 a second against ~60 produced: always lags
    runs = Runs(manager, target(broker.bootstrap))
    try:
        for _ in range(3):
            time.sleep(GAP)
            runs.run()
        ring = runs.history[-1].metrics["offsets"]["g"][group][topic][0][4]
        back_to = max(0, ring[-1][1] - 15)
        consumer.seek(back_to)
        found = None
        for _ in range(6):
            time.sleep(GAP)
            r = runs.run()
            found = [f for f in burrow_findings(r, group) if f.code.endswith("group_rewind")]
            if found:
                break
        # regained: it passes the offset it had before the rewind, still lagging
        while consumer.log[0][-1][1] <= ring[-1][1] + 5:
            time.sleep(0.1)
        time.sleep(GAP)
        r2 = runs.run()
        want = reference(consumer, r2, group, topic)
    finally:
        consumer.close()
        producer.close()
    assert found, r.metrics["group_status"]
    assert found[0].severity is Severity.CRITICAL
    assert r2.metrics["group_lag"][group] > 0
    assert r2.metrics["group_status"][group] == "REWIND"
    assert want == "REWIND"


def test_group_not_committing_for_long_is_expired_once(broker, manager) -> None:  # type: ignore[no-untyped-def]
    topic, group = uniq("old"), uniq("retired")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 5})
    commit_offsets(broker.bootstrap, group, topic, {0: 2})
    runs = Runs(manager, target(broker.bootstrap, thresholds={"expire_group_seconds": 1}))
    r = runs.run()
    # Empty and lagging: judged at once (issue 24 item 4)
    assert r.metrics["group_status"][group] == "STOP"
    time.sleep(1.2)
    r = runs.run()
    expired = [f for f in r.findings if f.code == "kafka.consumer.group_expired"]
    assert len(expired) == 1 and expired[0].severity is Severity.INFO
    assert group in expired[0].evidence["groups"]
    assert r.metrics["group_status"][group] == "EXPIRED"
    assert not burrow_findings(r, group)
    r = runs.run()  # reported once, then quiet
    assert r.metrics["group_status"][group] == "EXPIRED"
    assert not [f for f in r.findings if f.code == "kafka.consumer.group_expired"
                and group in f.evidence["groups"]]
    commit_offsets(broker.bootstrap, group, topic, {0: 3})  # it commits again
    r = runs.run()
    assert r.metrics["group_status"][group] == "OK"


def test_tracked_partitions_beyond_the_cap_keep_lagging_groups_first(
        tmp_path, manager) -> None:  # type: ignore[no-untyped-def]
    broker = Tansu(tmp_path)  # its own broker: only these two groups
    try:
        _capped(broker, manager)
    finally:
        broker.stop()


def _capped(broker: Tansu, manager: PluginManager) -> None:
    topic, lagging, fine = uniq("capped"), uniq("behind"), uniq("current")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 9})
    commit_offsets(broker.bootstrap, lagging, topic, {0: 2})
    commit_offsets(broker.bootstrap, fine, topic, {0: 9})
    runs = Runs(manager, target(broker.bootstrap, thresholds={"max_tracked_partitions": 1}))
    r = runs.run()
    assert {lagging, fine} <= set(r.metrics["judged_without_history"])
    stored = r.metrics["offsets"]["g"]
    assert lagging in stored and fine not in stored
    f = [f for f in r.findings if f.code == "kafka.consumer.history_truncated"][0]
    assert fine in f.evidence["groups"] and lagging not in f.evidence["groups"]
    r = runs.run()
    assert r.metrics["window_source"][lagging] == "history"
    assert lagging not in r.metrics["judged_without_history"]
