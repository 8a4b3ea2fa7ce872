"""Reading the cluster: batched protocol requests through :class:`Wire`.

Request counts for a cluster of B brokers, G groups, L partition leaders: one Metadata;
B ListGroups; G FindCoordinator (none on a single broker); one DescribeGroups per
coordinator (chunks of 100 groups); G OffsetFetch; one ListOffsets per leader broker;
one DescribeConfigs per 200 topics. All pipelined, at most ``max_in_flight`` at once.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from kafka.protocol.admin import DescribeConfigsRequest, DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.commit import OffsetFetchRequest
from kafka.protocol.fetch import FetchRequest
from kafka.protocol.find_coordinator import FindCoordinatorRequest
from kafka.protocol.list_offsets import ListOffsetsRequest
from kafka.protocol.metadata import MetadataRequest

from ..deadline import Deadline
from . import compat
from .constants import CONFIG_KEYS
from .model import TP, Cluster, Group, Sample, cluster_from_metadata
from .wire import RequestFailed, Wire

DESCRIBE_GROUPS_CHUNK = 100
CONFIGS_CHUNK = 200
LIST_OFFSETS_CHUNK = 2000

_TOPIC_RESOURCE = 2


def _err(code: int) -> str | None:
    if not code:
        return None
    import kafka.errors as Errors

    return Errors.for_code(code).__name__


def metadata(wire: Wire, deadline: Deadline) -> Cluster:
    version = wire.version(MetadataRequest, max_version=7)
    if version == 0:
        req = MetadataRequest[0](topics=[])  # v0: an empty list means every topic
    elif version < 4:
        req = MetadataRequest[version](topics=None)
    else:
        req = MetadataRequest[version](topics=None, allow_auto_topic_creation=False)
    resp = wire.call(wire.any_node(), req, deadline)
    # node ids -> addresses for kafka-python's own connections
    wire.client.cluster.update_metadata(resp)
    return cluster_from_metadata(resp)


def list_groups(wire: Wire, cluster: Cluster, deadline: Deadline) -> tuple[dict[str, str], dict[int, str]]:
    """group -> protocol type, from every broker; and the brokers that did not answer."""
    version = wire.version(ListGroupsRequest, max_version=2)
    nodes = sorted(cluster.brokers)
    out: dict[str, str] = {}
    failed: dict[int, str] = {}
    for node, resp in zip(nodes, wire.call_many([(n, ListGroupsRequest[version]()) for n in nodes], deadline)):
        if isinstance(resp, RequestFailed):
            failed[node] = str(resp.cause)
            continue
        if resp.error_code:
            failed[node] = _err(resp.error_code) or ""
            continue
        for group, protocol_type in resp.groups:
            out[group] = protocol_type
    return out, failed


def coordinators(wire: Wire, cluster: Cluster, groups: Iterable[str], deadline: Deadline) -> tuple[dict[str, int], dict[str, str]]:
    groups = list(groups)
    if len(cluster.brokers) == 1:  # the only broker coordinates every group
        only = next(iter(cluster.brokers))
        return {g: only for g in groups}, {}
    version = wire.version(FindCoordinatorRequest, max_version=2)
    node = wire.any_node()
    reqs = [(node, FindCoordinatorRequest[version](g) if version == 0
             else FindCoordinatorRequest[version](g, 0)) for g in groups]
    found: dict[str, int] = {}
    errors: dict[str, str] = {}
    for g, resp in zip(groups, wire.call_many(reqs, deadline)):
        if isinstance(resp, RequestFailed):
            errors[g] = str(resp.cause)
        elif resp.error_code:
            errors[g] = _err(resp.error_code) or ""
        else:
            found[g] = resp.coordinator_id
    return found, errors


def describe_groups(wire: Wire, coord: Mapping[str, int], protocol_types: Mapping[str, str],
                    deadline: Deadline) -> dict[str, Group]:
    version = wire.version(DescribeGroupsRequest, max_version=3)
    by_node: dict[int, list[str]] = defaultdict(list)
    for g, node in coord.items():
        by_node[node].append(g)
    calls, chunks = [], []
    for node, gs in by_node.items():
        for i in range(0, len(gs), DESCRIBE_GROUPS_CHUNK):
            chunk = gs[i:i + DESCRIBE_GROUPS_CHUNK]
            req = (DescribeGroupsRequest[version](groups=chunk, include_authorized_operations=False)
                   if version >= 3 else DescribeGroupsRequest[version](groups=chunk))
            calls.append((node, req))
            chunks.append((node, chunk))
    out: dict[str, Group] = {}
    for (node, chunk), resp in zip(chunks, wire.call_many(calls, deadline)):
        if isinstance(resp, RequestFailed):
            for g in chunk:
                out[g] = Group(g, coordinator=node, error=str(resp.cause),
                               protocol_type=protocol_types.get(g, ""))
            continue
        for row in resp.groups:
            error_code, gid, state, ptype, protocol, members = row[:6]
            consumer = ptype in ("consumer", "")
            out[gid] = Group(
                gid, state=state, protocol_type=ptype, protocol=protocol, coordinator=node,
                error=_err(error_code),
                members=[compat.decode_member(m[0], m[1], m[2], m[3], m[4], consumer)
                         for m in members])
    return out


def committed(wire: Wire, cluster: Cluster, coord: Mapping[str, int], flavor: str,
              deadline: Deadline, partitions: Mapping[str, Iterable[TP]] | None = None
              ) -> tuple[dict[str, dict[TP, int]], dict[str, str]]:
    """group -> committed offsets (partitions without a commit are left out). With
    ``partitions``, only those of each group are asked for; else every partition the
    group committed (KIP-88's null topic list), or on Tansu every partition listed."""
    version = wire.version(OffsetFetchRequest, max_version=5)
    everything = None
    if partitions is None and (version < 2 or compat.offset_fetch_lists_partitions(flavor)):
        everything = [(name, [p.partition for p in t.partitions]) for name, t in cluster.topics.items()]
    groups = list(coord)
    reqs = []
    for g in groups:
        topics = everything
        if partitions is not None:
            by_topic: dict[str, list[int]] = defaultdict(list)
            for t, p in partitions.get(g, ()):
                by_topic[t].append(p)
            topics = sorted(by_topic.items())
        reqs.append((coord[g], OffsetFetchRequest[version](g, topics)))
    out: dict[str, dict[TP, int]] = {}
    errors: dict[str, str] = {}
    for g, resp in zip(groups, wire.call_many(reqs, deadline)):
        if isinstance(resp, RequestFailed):
            errors[g] = str(resp.cause)
            continue
        if version >= 2 and resp.error_code:
            errors[g] = _err(resp.error_code) or ""
            continue
        offs: dict[TP, int] = {}
        for topic, parts in resp.topics:
            for row in parts:
                partition, offset, error_code = row[0], row[1], row[-1]
                if error_code == 0 and offset >= 0:
                    offs[(topic, partition)] = offset
        out[g] = offs
    return out, errors


def _list_offsets_request(version: int, by_topic: Mapping[str, list[int]]) -> Any:
    topics = []
    for topic, parts in by_topic.items():
        if version == 0:
            rows = [(p, -1, 1) for p in parts]
        elif version < 4:
            rows = [(p, -1) for p in parts]
        else:
            rows = [(p, -1, -1) for p in parts]
        topics.append((topic, rows))
    if version >= 2:  # read_uncommitted: the high-water mark, not the last stable offset
        return ListOffsetsRequest[version](replica_id=-1, isolation_level=0, topics=topics)
    return ListOffsetsRequest[version](replica_id=-1, topics=topics)


def high_watermarks(wire: Wire, cluster: Cluster, tps: Iterable[TP], flavor: str,
                    deadline: Deadline) -> tuple[dict[TP, int], dict[TP, str]]:
    """High-water marks from each partition's leader, one request per leader (chunked)."""
    out, errors = latest_offsets(wire, cluster, tps, deadline)
    if compat.hwm_from_fetch(flavor) and out:
        out = _hwm_via_fetch(wire, cluster, out, deadline)
    return out, errors


def latest_offsets(wire: Wire, cluster: Cluster, tps: Iterable[TP],
                   deadline: Deadline) -> tuple[dict[TP, int], dict[TP, str]]:
    """ListOffsets(latest): the high-water mark on Apache Kafka."""
    by_leader: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    errors: dict[TP, str] = {}
    for topic, part in tps:
        t = cluster.topics.get(topic)
        p = t.get(part) if t else None
        if p is None or p.leader < 0:
            errors[(topic, part)] = "no leader" if p is not None else "unknown partition"
            continue
        by_leader[p.leader][topic].append(part)
    version = wire.version(ListOffsetsRequest, max_version=5)
    calls, sent = [], []
    for leader, by_topic in by_leader.items():
        items = [(t, ps) for t, ps in by_topic.items()]
        chunk: dict[str, list[int]] = {}
        n = 0
        for t, ps in items + [("", [])]:
            if (n + len(ps) > LIST_OFFSETS_CHUNK or not t) and chunk:
                calls.append((leader, _list_offsets_request(version, chunk)))
                sent.append(leader)
                chunk, n = {}, 0
            if t:
                chunk[t] = ps
                n += len(ps)
    out: dict[TP, int] = {}
    for leader, resp in zip(sent, wire.call_many(calls, deadline)):
        if isinstance(resp, RequestFailed):
            for t, ps in by_leader[leader].items():
                for p in ps:
                    errors[(t, p)] = str(resp.cause)
            continue
        for topic, parts in resp.topics:
            for row in parts:
                partition, error_code = row[0], row[1]
                offset = row[2][0] if version == 0 and row[2] else row[3] if version else -1
                if error_code:
                    errors[(topic, partition)] = _err(error_code) or ""
                elif offset >= 0:
                    out[(topic, partition)] = offset
    return out, errors


def _hwm_via_fetch(wire: Wire, cluster: Cluster, latest: dict[TP, int], deadline: Deadline) -> dict[TP, int]:
    version = wire.version(FetchRequest, max_version=4)
    by_leader: dict[int, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for (topic, part), off in latest.items():
        p = cluster.topics[topic].get(part)
        if p is None:
            continue
        by_leader[p.leader][topic].append((part, max(0, off - 1)))
    leaders = list(by_leader)
    calls = [(ld, compat.fetch_hwm_request(FetchRequest, version, by_leader[ld])) for ld in leaders]
    out = dict(latest)
    for resp in wire.call_many(calls, deadline):
        if not isinstance(resp, RequestFailed):
            out.update(compat.parse_fetch_hwm(resp))
    return out


def topic_configs(wire: Wire, topics: Iterable[str], flavor: str,
                  deadline: Deadline) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    version = wire.version(DescribeConfigsRequest, max_version=2)
    names = sorted(topics)
    keys = list(CONFIG_KEYS) if compat.describe_configs_names_keys(flavor) else None
    calls = []
    for i in range(0, len(names), CONFIGS_CHUNK):
        res = [(_TOPIC_RESOURCE, t, keys) for t in names[i:i + CONFIGS_CHUNK]]
        req = (DescribeConfigsRequest[version](resources=res) if version == 0
               else DescribeConfigsRequest[version](resources=res, include_synonyms=False))
        calls.append((wire.any_node(), req))
    out: dict[str, dict[str, str]] = {}
    errors: dict[str, str] = {}
    for resp in wire.call_many(calls, deadline):
        if isinstance(resp, RequestFailed):
            errors["*"] = str(resp.cause)
            continue
        for row in resp.resources:
            error_code, _msg, _rtype, name, entries = row[:5]
            if error_code:
                errors[name] = _err(error_code) or ""
                continue
            out[name] = {e[0]: e[1] for e in entries}
    return out, errors


def sample(wire: Wire, cluster: Cluster, coord: Mapping[str, int], flavor: str,
           deadline: Deadline, groups: Iterable[str] | None = None,
           known: Mapping[str, Iterable[TP]] | None = None) -> tuple[Sample, dict[str, str]]:
    """Committed offsets of ``groups`` (default: all) and the high-water marks of their
    partitions, read as close together as the protocol allows. ``known``: the partitions
    each group is known to have committed (a re-reading of the same groups)."""
    chosen = {g: coord[g] for g in (groups if groups is not None else coord) if g in coord}
    at = time.time()
    partitions = known
    if partitions is None and compat.offset_fetch_lists_partitions(flavor):
        # compat difference 2: the partitions must be named, and Tansu's cost grows with
        # groups x partitions; a commit on a partition without data has nothing to lag
        latest, _ = latest_offsets(wire, cluster, [(t, p.partition) for t, tp in cluster.topics.items()
                                                   for p in tp.partitions], deadline)
        nonempty = [tp for tp, off in latest.items() if off > 0]
        partitions = {g: nonempty for g in chosen}
    offs, errors = committed(wire, cluster, chosen, flavor, deadline, partitions)
    tps = {tp for o in offs.values() for tp in o}
    hwm, _ = high_watermarks(wire, cluster, tps, flavor, deadline)
    return Sample(at=at, committed=offs, hwm=hwm), errors
