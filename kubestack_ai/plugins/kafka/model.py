"""Plain data the checks read: cluster metadata, groups, offsets. Built from the protocol
responses kafka-python decodes; no I/O here, so the checks can be tested on hand-built
responses (a multi-broker cluster cannot be started on this machine)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TP = tuple[str, int]
"""(topic, partition)"""


@dataclass(frozen=True, slots=True)
class Broker:
    node_id: int
    host: str
    port: int
    rack: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Partition:
    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...] = ()
    error: int = 0

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)

    @property
    def offline_leader(self) -> bool:
        return self.leader < 0

    @property
    def preferred_leader(self) -> int | None:
        return self.replicas[0] if self.replicas else None


@dataclass(slots=True)
class Topic:
    name: str
    internal: bool
    error: int
    partitions: list[Partition] = field(default_factory=list)

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    def get(self, n: int) -> Partition | None:
        if 0 <= n < len(self.partitions) and self.partitions[n].partition == n:
            return self.partitions[n]
        return next((p for p in self.partitions if p.partition == n), None)


@dataclass(slots=True)
class Cluster:
    brokers: dict[int, Broker]
    controller_id: int | None
    cluster_id: str | None
    topics: dict[str, Topic]

    def partitions(self) -> list[Partition]:
        return [p for t in self.topics.values() for p in t.partitions]

    def leaders_per_broker(self) -> Counter[int]:
        return Counter(p.leader for p in self.partitions() if p.leader >= 0)


# Partition row layout of MetadataResponse by version: (leader, replicas, isr, offline)
# positions; leader_epoch appears at v7, offline_replicas at v5.
_PARTITION_FIELDS: dict[int, tuple[int, int, int, int | None]] = {v: (2, 3, 4, None) for v in range(5)}
_PARTITION_FIELDS.update({5: (2, 3, 4, 5), 6: (2, 3, 4, 5), 7: (2, 4, 5, 6), 8: (2, 4, 5, 6)})


def cluster_from_metadata(resp: Any) -> Cluster:
    """A :class:`Cluster` from any MetadataResponse version kafka-python decodes (the
    rows are read by position for the known versions: thousands of partitions)."""
    version = resp.API_VERSION
    fields = _PARTITION_FIELDS.get(version)
    if fields is None:
        return _cluster_from_object(resp.to_object())
    leader_i, replicas_i, isr_i, offline_i = fields
    brokers = {}
    for b in resp.brokers:
        brokers[b[0]] = Broker(b[0], b[1], b[2], b[3] if version >= 1 else None)
    topics: dict[str, Topic] = {}
    for t in resp.topics:
        if version == 0:
            error, name, internal, parts = t[0], t[1], False, t[2]
        else:
            error, name, internal, parts = t[0], t[1], bool(t[2]), t[3]
        topic = Topic(name, internal, error)
        topic.partitions = sorted(
            (Partition(topic=name, partition=p[1], leader=p[leader_i], replicas=tuple(p[replicas_i]),
                       isr=tuple(p[isr_i]),
                       offline=tuple(p[offline_i] or ()) if offline_i is not None else (),
                       error=p[0]) for p in parts),
            key=lambda x: x.partition)
        topics[name] = topic
    return Cluster(brokers=brokers, controller_id=resp.controller_id if version >= 1 else None,
                   cluster_id=resp.cluster_id if version >= 2 else None, topics=topics)


def _cluster_from_object(obj: dict[str, Any]) -> Cluster:
    brokers = {b["node_id"]: Broker(b["node_id"], b["host"], b["port"], b.get("rack"))
               for b in obj["brokers"]}
    topics: dict[str, Topic] = {}
    for t in obj["topics"]:
        topic = Topic(t["topic"], bool(t.get("is_internal", False)), t["error_code"])
        for p in t["partitions"]:
            topic.partitions.append(Partition(
                topic=t["topic"], partition=p["partition"], leader=p["leader"],
                replicas=tuple(p["replicas"]), isr=tuple(p["isr"]),
                offline=tuple(p.get("offline_replicas") or ()), error=p["error_code"]))
        topic.partitions.sort(key=lambda x: x.partition)
        topics[topic.name] = topic
    return Cluster(brokers=brokers, controller_id=obj.get("controller_id"),
                   cluster_id=obj.get("cluster_id"), topics=topics)


@dataclass(slots=True)
class Member:
    member_id: str
    client_id: str
    client_host: str
    subscription: tuple[str, ...] | None = None
    """Subscribed topics; None when the broker did not report the member's metadata."""
    assignment: dict[str, tuple[int, ...]] | None = None
    """Assigned partitions by topic; None when not reported."""

    def assigned(self) -> list[TP]:
        return [(t, p) for t, ps in (self.assignment or {}).items() for p in ps]


@dataclass(slots=True)
class Group:
    group_id: str
    state: str = "Unknown"
    protocol_type: str = ""
    protocol: str = ""
    members: list[Member] = field(default_factory=list)
    coordinator: int | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.members)


@dataclass(slots=True)
class Sample:
    """One reading of committed offsets and high-water marks."""

    at: float
    """Unix seconds."""
    committed: dict[str, dict[TP, int]]
    """group -> (topic, partition) -> committed offset (partitions with a commit only)."""
    hwm: dict[TP, int]

    def lag(self, group: str) -> dict[TP, int]:
        """High-water mark minus committed offset, never negative (kafka_exporter #437);
        a partition whose high-water mark is unknown is left out, never guessed."""
        out = {}
        for tp, off in self.committed.get(group, {}).items():
            hw = self.hwm.get(tp)
            if hw is not None:
                out[tp] = max(0, hw - off)
        return out
