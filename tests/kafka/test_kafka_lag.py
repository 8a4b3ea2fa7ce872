"""Consumer lag and status against a real broker (Tansu), seeded with real conditions."""

from __future__ import annotations

from kubestack_ai.plugins import Severity

from .kafka_helpers import (
    commit_offsets,
    consume_in_group,
    create_topic,
    diagnose,
    produce,
    target,
    uniq,
)


def codes(result) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {f.code: f for f in result.findings}


def test_lag_is_high_water_mark_minus_committed_per_partition_and_group(broker, manager) -> None:
    topic, group = uniq("orders"), uniq("billing")
    create_topic(broker.bootstrap, topic, 3)
    produce(broker.bootstrap, topic, {0: 10, 1: 7, 2: 4})
    consumer = consume_in_group(broker.bootstrap, group, topic, {0: 6, 1: 7, 2: 1})
    try:
        r = diagnose(manager, target(broker.bootstrap), "consumer")
    finally:
        consumer.close()
    assert not r.errors, r.errors
    assert r.metrics["partition_lag"][group] == {f"{topic}:0": 4, f"{topic}:1": 0, f"{topic}:2": 3}
    assert r.metrics["group_lag"][group] == 7
    assert r.metrics["group_members"][group] == 1
    assert r.metrics["group_state"][group] == "Stable"


def test_group_without_members_still_reports_its_lag(broker, manager) -> None:
    topic, group = uniq("events"), uniq("nightly")
    create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, {0: 5, 1: 3})
    commit_offsets(broker.bootstrap, group, topic, {0: 2, 1: 3})
    r = diagnose(manager, target(broker.bootstrap), "consumer")
    assert r.metrics["group_state"][group] == "Empty"
    assert r.metrics["group_members"][group] == 0
    assert r.metrics["partition_lag"][group] == {f"{topic}:0": 3, f"{topic}:1": 0}
    empty = codes(r)["kafka.consumer.group_empty"]
    assert empty.evidence["lag_by_group"][group] == 3
    # a group without members never commits again: its one commit is judged at once, as
    # Burrow does (issue 24 item 4), and not sampled in-run (it commits nothing in a second)
    assert r.metrics["group_status"][group] == "STOP"
    assert group in r.metrics["judged_without_history"]
    stop = [f for f in r.findings if f.code == "kafka.consumer.group_stop"
            and f.evidence.get("group") == group]
    assert len(stop) == 1 and stop[0].severity is Severity.WARNING


def test_caught_up_group_is_ok_and_not_sampled(broker, manager) -> None:
    topic, group = uniq("clicks"), uniq("fast")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 4})
    commit_offsets(broker.bootstrap, group, topic, {0: 4})
    r = diagnose(manager, target(broker.bootstrap), "consumer")
    assert r.metrics["partition_lag"][group] == {f"{topic}:0": 0}
    assert r.metrics["group_status"][group] == "OK"
    assert not [f for f in r.findings if f.evidence.get("group") == group]


def test_replication_factor_one_is_a_finding(broker, manager) -> None:
    topic = uniq("rf1")
    create_topic(broker.bootstrap, topic, 1)
    r = diagnose(manager, target(broker.bootstrap), "topic")
    f = codes(r)["kafka.topic.replication_factor_one"]
    assert f.severity is Severity.INFO  # one broker: no other factor is possible
    assert topic in f.evidence["topics"] and f.evidence["brokers"] == 1
    # Tansu answers DescribeConfigs with no entries: said, not silently passed
    unavailable = codes(r)["kafka.topic.config_unavailable"]
    assert topic in unavailable.evidence["topics"]
    assert unavailable.suggestion.startswith("This broker (Tansu) does not report topic "
                                             "configuration")
    assert "Grant" not in unavailable.suggestion


def test_broker_category_on_a_healthy_single_broker(broker, manager) -> None:
    r = diagnose(manager, target(broker.bootstrap), "broker")
    assert not r.errors, r.errors
    assert r.metrics["brokers"] == 1
    assert r.metrics["offline_partitions"] == 0
    assert r.metrics["under_replicated_partitions"] == 0
    assert not [f for f in r.findings if f.category == "broker"]


def test_work_is_bounded_by_max_groups_and_categories(broker, manager) -> None:
    topic = uniq("bounded")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 2})
    for _ in range(2):
        commit_offsets(broker.bootstrap, uniq("many"), topic, {0: 2})
    r = diagnose(manager, target(broker.bootstrap, thresholds={"max_groups": 1}), "consumer")
    assert r.metrics["consumer_groups"] == 1
    f = codes(r)["kafka.consumer.groups_truncated"]
    assert f.evidence["max_groups"] == 1 and f.evidence["groups"] >= 2
    only_topics = diagnose(manager, target(broker.bootstrap), "topic")
    assert only_topics.categories == ("topic",)
    assert "consumer_groups" not in only_topics.metrics and "brokers" not in only_topics.metrics


def test_lag_is_read_when_asked_not_when_the_consumer_last_committed(broker, manager) -> None:
    """Burrow #127: a consumer that stopped caught up must show the lag that grew since."""
    topic, group = uniq("late"), uniq("idle")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 3})
    commit_offsets(broker.bootstrap, group, topic, {0: 3})
    assert diagnose(manager, target(broker.bootstrap), "consumer").metrics["group_lag"][group] == 0
    produce(broker.bootstrap, topic, {0: 4})
    assert diagnose(manager, target(broker.bootstrap), "consumer").metrics["group_lag"][group] == 4


def test_high_water_mark_of_a_multi_record_batch(broker, manager) -> None:
    """compat difference 1: Tansu's ListOffsets answers the last batch's base offset + 1;
    the plugin reads the high-water mark from a Fetch there. The standard read (what the
    plugin does on Apache Kafka) shows the difference the compat path covers."""
    from kafka import KafkaProducer

    from kubestack_ai.plugins import Deadline
    from kubestack_ai.plugins.kafka import collect
    from kubestack_ai.plugins.kafka.wire import Wire

    topic, group = uniq("batched"), uniq("bulk")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 10})
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=500, batch_size=1 << 20,
                      client_id="ksa-test")
    try:
        futures = [p.send(topic, b"b%d" % i, partition=0) for i in range(20)]
        p.flush()
        assert {f.get(timeout=10).offset for f in futures} == set(range(10, 30))
    finally:
        p.close()
    commit_offsets(broker.bootstrap, group, topic, {0: 5})
    r = diagnose(manager, target(broker.bootstrap), "consumer")
    assert r.metrics["broker_flavor"] == "tansu"
    assert r.metrics["partition_lag"][group] == {f"{topic}:0": 25}
    d = Deadline(20)
    wire = Wire.open(target(broker.bootstrap), d)
    try:
        cluster = collect.metadata(wire, d)
        standard, _ = collect.latest_offsets(wire, cluster, [(topic, 0)], d)
        compat_path, _ = collect.high_watermarks(wire, cluster, [(topic, 0)], "tansu", d)
    finally:
        wire.close()
    assert standard == {(topic, 0): 11}  # 10 single-record batches, then one of 20
    assert compat_path == {(topic, 0): 30}


def test_find_coordinator_path_against_the_broker(broker) -> None:
    """A single broker coordinates every group, so the plugin skips FindCoordinator; here
    the metadata is given a second (absent) broker to send the real requests."""
    from kubestack_ai.plugins import Deadline
    from kubestack_ai.plugins.kafka import collect
    from kubestack_ai.plugins.kafka.model import Broker
    from kubestack_ai.plugins.kafka.wire import Wire

    topic, group = uniq("coord"), uniq("found")
    create_topic(broker.bootstrap, topic, 1)
    produce(broker.bootstrap, topic, {0: 1})
    commit_offsets(broker.bootstrap, group, topic, {0: 1})
    d = Deadline(20)
    wire = Wire.open(target(broker.bootstrap), d)
    try:
        cluster = collect.metadata(wire, d)
        (only,) = cluster.brokers
        cluster.brokers[only + 1000] = Broker(only + 1000, "127.0.0.1", 1)
        coord, errors = collect.coordinators(wire, cluster, [group], d)
    finally:
        wire.close()
    assert coord == {group: only} and errors == {}
