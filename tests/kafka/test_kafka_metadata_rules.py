"""Conditions only a multi-broker cluster shows (ISR shrink, offline partitions, a broker
gone, preferred-leader imbalance, leader skew) and topic-config and assignment rules.

Why not against a server: the only Kafka broker this machine can run is a single Tansu
process, whose metadata always has ISR = replicas = [itself] and which returns no topic
configs and no member assignments. So these tests build the exact structures
kafka-python decodes from the wire (MetadataResponse_v7, the consumer protocol's member
metadata and assignment), encode them to bytes and decode them back, and run the
plugin's rules on the result."""

from __future__ import annotations

import io

from kafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment_v0,
    ConsumerProtocolMemberMetadata_v0,
)
from kafka.protocol.metadata import MetadataResponse_v7

from kubestack_ai.plugins import Severity
from kubestack_ai.plugins.kafka import compat
from kubestack_ai.plugins.kafka.checks.broker import isr_findings, metadata_findings, reach_findings
from kubestack_ai.plugins.kafka.checks.consumer import assignment_findings
from kubestack_ai.plugins.kafka.checks.topic import config_findings, leader_findings, replication_findings
from kubestack_ai.plugins.kafka.model import Group, cluster_from_metadata


def metadata(partitions: dict[str, list[tuple[int, int, list[int], list[int], list[int]]]],
             brokers: tuple[int, ...] = (1, 2, 3), controller: int = 1):  # type: ignore[no-untyped-def]
    """topic -> [(partition, leader, replicas, isr, offline)] as a decoded v7 response."""
    resp = MetadataResponse_v7(
        throttle_time_ms=0,
        brokers=[(b, "127.0.0.1", 9090 + b, None) for b in brokers],
        cluster_id="prod-eu", controller_id=controller,
        topics=[(0, t, False, [(0, p, leader, 0, replicas, isr, offline)
                               for p, leader, replicas, isr, offline in parts])
                for t, parts in partitions.items()])
    return cluster_from_metadata(MetadataResponse_v7.decode(io.BytesIO(resp.encode())))


def by_code(findings):  # type: ignore[no-untyped-def]
    return {f.code: f for f in findings}


def never_fails(host: str) -> None:
    return None


def test_isr_shrink_is_an_under_replicated_partition_named() -> None:
    c = metadata({"orders": [(0, 1, [1, 2, 3], [1, 2, 3], []), (1, 2, [2, 3, 1], [2], [3])]})
    f = by_code(isr_findings(c, {}))["kafka.broker.under_replicated_partitions"]
    assert f.severity is Severity.WARNING
    assert f.evidence["count"] == 1
    assert f.evidence["partitions"] == [{"partition": "orders:1", "leader": 2,
                                         "replicas": [2, 3, 1], "isr": [2],
                                         "offline_replicas": [3]}]


def test_isr_below_min_insync_replicas_is_critical() -> None:
    c = metadata({"orders": [(0, 1, [1, 2, 3], [1], [])]})
    f = by_code(isr_findings(c, {"orders": 2}))["kafka.broker.below_min_isr"]
    assert f.severity is Severity.CRITICAL
    assert f.evidence["partitions"][0]["min_insync_replicas"] == 2


def test_partition_without_leader_is_offline_and_critical() -> None:
    c = metadata({"orders": [(0, -1, [1, 2], [], [1, 2]), (1, 2, [2, 1], [2, 1], [])]})
    fs = by_code(isr_findings(c, {}))
    assert fs["kafka.broker.offline_partitions"].severity is Severity.CRITICAL
    assert fs["kafka.broker.offline_partitions"].evidence["partitions"] == [
        {"partition": "orders:0", "replicas": [1, 2], "offline_replicas": [1, 2]}]
    assert "kafka.broker.under_replicated_partitions" not in fs


def test_broker_missing_from_metadata_but_holding_replicas() -> None:
    c = metadata({"orders": [(0, 1, [1, 4], [1], [4])]}, brokers=(1, 2, 3))
    f = by_code(metadata_findings(c, never_fails))["kafka.broker.missing"]
    assert f.evidence["missing_brokers"] == {"4": 1}


def test_no_controller_and_unresolvable_addresses() -> None:
    c = metadata({}, controller=-1)
    fs = by_code(metadata_findings(c, lambda host: "Name or service not known"))
    assert fs["kafka.broker.no_controller"].severity is Severity.CRITICAL
    assert len(fs["kafka.broker.address_unresolvable"].evidence["brokers"]) == 3


def test_unreachable_broker_is_named() -> None:
    c = metadata({})
    (f,) = reach_findings(c, {1: None, 2: "connection failed", 3: None})
    assert f.code == "kafka.broker.unreachable"
    assert f.evidence["brokers"] == [{"node_id": 2, "address": "127.0.0.1:9092",
                                      "error": "connection failed"}]


def test_preferred_leader_imbalance_and_leader_skew() -> None:
    parts = [(p, 1, [(p % 3) + 1, 1, 2], [1, 2, 3], []) for p in range(6)]  # broker 1 leads all
    c = metadata({"orders": parts})
    fs = by_code(leader_findings(c, skew_ratio=1.5, preferred_pct=10.0))
    imb = fs["kafka.topic.preferred_leader_imbalance"]
    assert imb.evidence["count"] == 4 and imb.evidence["percent"] == 66.7
    assert fs["kafka.topic.leader_skew"].evidence["leaders_per_broker"] == {"1": 6, "2": 0, "3": 0}


def test_balanced_leadership_has_no_finding() -> None:
    parts = [(p, (p % 3) + 1, [(p % 3) + 1, ((p + 1) % 3) + 1], [1, 2, 3], []) for p in range(6)]
    assert leader_findings(metadata({"orders": parts}), 1.5, 10.0) == []


def test_replication_factor_rules_on_a_three_broker_cluster() -> None:
    c = metadata({"rf1": [(0, 1, [1], [1], [])], "rf2": [(0, 1, [1, 2], [1, 2], [])],
                  "rf3": [(0, 1, [1, 2, 3], [1, 2, 3], [])]})
    fs = by_code(replication_findings(c, min_rf=3))
    assert fs["kafka.topic.replication_factor_one"].evidence["topics"] == ["rf1"]
    assert fs["kafka.topic.replication_factor_one"].severity is Severity.WARNING
    assert fs["kafka.topic.replication_factor_low"].evidence["topics"] == ["rf2"]
    assert fs["kafka.topic.partitions_below_brokers"].evidence["count"] == 3


def test_replication_factor_one_on_one_broker_is_info() -> None:
    c = metadata({"rf1": [(0, 1, [1], [1], [])]}, brokers=(1,))
    f = by_code(replication_findings(c, min_rf=3))["kafka.topic.replication_factor_one"]
    assert f.severity is Severity.INFO and "no other factor is possible" in f.title


def test_topic_config_risks() -> None:
    c = metadata({t: [(0, 1, [1, 2, 3], [1, 2, 3], [])] for t in "abcdefg"})
    configs = {
        "a": {"min.insync.replicas": "4"},
        "b": {"min.insync.replicas": "3"},
        "c": {"min.insync.replicas": "1"},
        "d": {"unclean.leader.election.enable": "true", "min.insync.replicas": "2"},
        "e": {"retention.ms": "60000", "cleanup.policy": "delete"},
        "f": {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"},
        "g": {"cleanup.policy": "shred"},
    }
    fs = by_code(config_findings(c, configs, retention_min_ms=3_600_000))
    assert fs["kafka.topic.min_isr_above_replication_factor"].severity is Severity.CRITICAL
    assert fs["kafka.topic.min_isr_above_replication_factor"].evidence["topics"][0]["topic"] == "a"
    assert fs["kafka.topic.min_isr_equals_replication_factor"].evidence["topics"][0]["topic"] == "b"
    assert fs["kafka.topic.min_isr_one"].evidence["topics"][0]["topic"] == "c"
    assert fs["kafka.topic.unclean_leader_election"].evidence["topics"] == ["d"]
    assert fs["kafka.topic.retention_short"].evidence["topics"] == [{"topic": "e", "retention_ms": 60000}]
    assert fs["kafka.topic.retention_unbounded"].evidence["topics"] == ["f"]
    assert fs["kafka.topic.cleanup_policy_invalid"].evidence["topics"][0]["topic"] == "g"
    assert config_findings(c, {"d": {"min.insync.replicas": "2"}}, 3_600_000) == []


def member(mid: str, topics: list[str], assigned: dict[str, list[int]]):  # type: ignore[no-untyped-def]
    # keep the structs referenced: kafka-python's encode() holds its instance weakly
    meta_struct = ConsumerProtocolMemberMetadata_v0(0, topics, b"")
    assign_struct = ConsumerProtocolMemberAssignment_v0(0, list(assigned.items()), b"")
    meta, assign = meta_struct.encode(), assign_struct.encode()
    return compat.decode_member(mid, "client", "/10.0.0.1", meta, assign, consumer_protocol=True)


def test_assignment_unowned_partitions_idle_members_and_skew() -> None:
    c = metadata({"orders": [(p, 1, [1], [1], []) for p in range(8)]})
    g = Group("billing", state="Stable", protocol_type="consumer", members=[
        member("m1", ["orders"], {"orders": [0, 1, 2, 3, 4]}),
        member("m2", ["orders"], {"orders": [5]}),
        member("m3", ["orders"], {}),
    ])
    fs = by_code(assignment_findings(g, c, skew_ratio=2.0))
    assert fs["kafka.consumer.partitions_unassigned"].evidence["partitions"] == ["orders:6", "orders:7"]
    assert fs["kafka.consumer.idle_members"].evidence["members"] == ["m3"]
    assert fs["kafka.consumer.assignment_skew"].evidence["partitions_per_member"] == {
        "m1": 5, "m2": 1, "m3": 0}


def test_assignment_not_reported_is_not_judged() -> None:
    # Tansu's DescribeGroups: empty member payloads (compat difference 3)
    m = compat.decode_member("m1", "c", "h", b"", b"", consumer_protocol=True)
    assert m.subscription is None and m.assignment is None
    c = metadata({"orders": [(0, 1, [1], [1], [])]})
    assert assignment_findings(Group("g", state="Stable", members=[m]), c, 2.0) == []


def test_flavor_detection() -> None:
    assert compat.detect(None, "tansu_cluster") == "tansu"
    assert compat.detect("auto", "MkU3OEVBNTcwNTJENDM2Qg") == "kafka"
    assert compat.detect("kafka", "tansu_cluster") == "kafka"


def test_metadata_rows_are_read_by_position_for_every_version() -> None:
    from kafka.protocol.metadata import MetadataResponse

    from kubestack_ai.plugins.kafka.model import _cluster_from_object

    part = {"error_code": 0, "partition": 1, "leader": 2, "leader_epoch": 3,
            "replicas": [2, 1], "isr": [2], "offline_replicas": [1]}
    for version in range(len(MetadataResponse)):
        cls = MetadataResponse[version]
        names = [n for n in cls.SCHEMA.names]
        top = {"throttle_time_ms": 0, "cluster_id": "c", "controller_id": 2,
               "authorized_operations": set(),
               "brokers": [tuple({"node_id": 2, "host": "h", "port": 9, "rack": None}[k]
                                 for k in cls.SCHEMA.fields[names.index("brokers")].array_of.names)]}
        tfields = cls.SCHEMA.fields[names.index("topics")].array_of
        pfields = tfields.fields[tfields.names.index("partitions")].array_of
        prow = tuple(part[k] for k in pfields.names)
        trow = tuple({"error_code": 0, "topic": "t", "is_internal": False, "partitions": [prow],
                      "authorized_operations": set()}[k] for k in tfields.names)
        resp = cls(*[top.get(n) if n != "topics" else [trow] for n in names])
        decoded = cls.decode(io.BytesIO(resp.encode()))
        assert cluster_from_metadata(decoded) == _cluster_from_object(decoded.to_object()), version


def test_config_unavailable_suggestion_depends_on_the_broker() -> None:
    # Apache Kafka answers DescribeConfigs when the user may: the grant is the fix
    assert compat.config_unavailable_suggestion(compat.KAFKA).startswith(
        "Grant DescribeConfigs on these topics")
    assert "does not report topic configuration" in compat.config_unavailable_suggestion(
        compat.TANSU)


def test_thresholds_default_from_constants_only(monkeypatch) -> None:
    import re
    from pathlib import Path

    from kubestack_ai.plugins import Deadline, DiagnoseOptions, MiddlewareTarget, Run
    from kubestack_ai.plugins.kafka import constants
    from kubestack_ai.plugins.kafka.plugin import KafkaPlugin
    from kubestack_ai.plugins.kafka.report import th

    t = MiddlewareTarget(type="kafka", endpoints=("127.0.0.1:9092",))
    run = Run(KafkaPlugin(), t, Deadline(5), DiagnoseOptions(), ("topic",))
    monkeypatch.setitem(constants.DEFAULTS, "retention_ms_min", 42)
    assert th(run, "retention_ms_min") == 42
    # one place for defaults: no check repeats one inline
    src = "".join(p.read_text() for p in Path(constants.__file__).parent.glob("*.py"))
    assert not re.search(r'\.threshold\("[a-z_]+", ', src)
