"""Where a broker differs from Apache Kafka, and only here.

The rest of the plugin speaks the standard protocol and is written for Apache Kafka.
Our tests run against Tansu (tansu-io/tansu 0.6.0, the Kafka-compatible broker the test
extra ships), which differs in ways that would otherwise give wrong numbers. Each
difference is named, with what we do about it:

1. ``ListOffsets(latest)`` answers the last record batch's base offset + 1, not the
   high-water mark (10 single-record sends then one batch of 90: 11, not 100). Lag
   needs the high-water mark, so on Tansu we read it from a Fetch response's
   ``highwater_offset`` (one small Fetch per leader: ``max_bytes`` 1, ``max_wait`` 1 ms;
   Tansu answers nothing at all with ``max_wait`` 0).
2. ``OffsetFetch`` v2+ with a null topic list (KIP-88, "every partition the group
   committed") is answered in a form kafka-python cannot decode, and the connection is
   then lost. On Tansu we list the partitions: those holding data (ListOffsets > 0; a
   commit on an empty partition has no lag to judge), since Tansu's cost grows with
   groups x partitions named. Re-readings of the same groups name the partitions each
   group committed (on any broker).
3. ``DescribeGroups`` returns empty ``member_metadata`` and ``member_assignment``. A
   real consumer always sends non-empty ones, so an empty payload means "not reported"
   (never "no partitions"): assignment checks are skipped for such members.
4. ``DescribeConfigs`` returns no entries: topic configuration cannot be audited; the
   topic check says so instead of passing silently. And a request naming the config
   keys wanted (instead of null, "all") makes Tansu drop the connection, so on Tansu we
   ask for all keys.

Which broker is it? ``broker_flavor`` (target option, then plugin option): ``kafka``,
``tansu`` or ``auto`` (the default: Tansu when the cluster id starts with ``tansu``, its
default ``tansu_cluster``). Anything not named here is treated as Apache Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..logcontext import get_logger
from .model import TP, Member

log = get_logger(__name__)

KAFKA = "kafka"
TANSU = "tansu"
FLAVORS = ("auto", KAFKA, TANSU)


def detect(option: str | None, cluster_id: str | None) -> str:
    choice = (option or "auto").lower()
    if choice not in FLAVORS:
        raise ValueError(f"broker_flavor {option!r}: use one of {', '.join(FLAVORS)}")
    if choice != "auto":
        return choice
    return TANSU if (cluster_id or "").lower().startswith("tansu") else KAFKA


def hwm_from_fetch(flavor: str) -> bool:
    """Difference 1: read high-water marks from Fetch instead of ListOffsets."""
    return flavor == TANSU


def offset_fetch_lists_partitions(flavor: str) -> bool:
    """Difference 2: name every partition in OffsetFetch instead of asking for all."""
    return flavor == TANSU


def describe_configs_names_keys(flavor: str) -> bool:
    """Difference 4: name the wanted config keys (smaller answers) except on Tansu."""
    return flavor != TANSU


def config_unavailable_suggestion(flavor: str) -> str:
    """Difference 4: Tansu never reports topic configuration; no grant would help."""
    if flavor == TANSU:
        return ("This broker (Tansu) does not report topic configuration (DescribeConfigs "
                "returns no entries): audit the topics' configuration by hand.")
    return ("Grant DescribeConfigs on these topics to the diagnosing user, or audit their "
            "configuration by hand.")


def fetch_hwm_request(fetch_api: list[Any], version: int,
                      by_topic: Mapping[str, Iterable[tuple[int, int]]]) -> Any:
    """A Fetch that only serves to read high-water marks: (partition, fetch offset) per
    topic, 1 byte allowed, 1 ms wait. The offset is the last batch's start, so it is
    always inside the log."""
    topics = []
    for topic, parts in by_topic.items():
        rows: list[tuple[int, ...]]
        if version >= 5:
            rows = [(p, off, -1, 1) for p, off in parts]  # log_start_offset
        else:
            rows = [(p, off, 1) for p, off in parts]
        topics.append((topic, rows))
    kw: dict[str, Any] = {"replica_id": -1, "max_wait_time": 1, "min_bytes": 0, "topics": topics}
    if version >= 3:
        kw["max_bytes"] = 1
    if version >= 4:
        kw["isolation_level"] = 0
    if version >= 7:
        kw.update(session_id=0, session_epoch=-1, forgotten_topics_data=[])
    return fetch_api[version](**kw)


def parse_fetch_hwm(resp: Any) -> dict[TP, int]:
    out: dict[TP, int] = {}
    for topic, parts in resp.topics:
        for row in parts:
            partition, error_code, hwm = row[0], row[1], row[2]
            if error_code == 0 and hwm >= 0:
                out[(topic, partition)] = hwm
    return out


def decode_member(member_id: str, client_id: str, client_host: str, metadata: bytes,
                  assignment: bytes, consumer_protocol: bool) -> Member:
    """Difference 3: an empty payload is "not reported", never "nothing assigned"."""
    from kafka.coordinator.protocol import (
        ConsumerProtocolMemberAssignment_v0,
        ConsumerProtocolMemberMetadata_v0,
    )

    m = Member(member_id, client_id, client_host)
    if not consumer_protocol:
        return m
    if metadata:
        try:
            m.subscription = tuple(ConsumerProtocolMemberMetadata_v0.decode(metadata).topics)
        except Exception:  # a newer or foreign encoding: leave it unknown
            log.debug("member %s: metadata not decodable", member_id)
    if assignment:
        try:
            decoded = ConsumerProtocolMemberAssignment_v0.decode(assignment)
            m.assignment = {t: tuple(ps) for t, ps in decoded.assignment}
        except Exception:  # a newer or foreign encoding: leave it unknown
            log.debug("member %s: assignment not decodable", member_id)
    return m
