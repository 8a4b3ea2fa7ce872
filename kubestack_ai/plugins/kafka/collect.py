"""Reading the cluster: batched protocol requests through :class:`Wire`.

Request counts for a cluster of B brokers, G groups, L partition leaders: one Metadata;
B ListGroups; G FindCoordinator (none on a single broker); one DescribeGroups per
coordinator (chunks of 100 groups); G OffsetFetch; one ListOffsets per leader broker;
one DescribeConfigs per 200 topics. All pipelined, at most ``max_in_flight`` at once.

Each read is a *plan* (its requests and the function that parses their answers), so that
independent reads share one round trip: :func:`gather` sends several plans together.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
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

    return str(Errors.for_code(code).__name__)


def metadata(wire: Wire, deadline: Deadline) -> Cluster:
    version = wire.version(MetadataRequest, max_version=7)
    if version == 0:
        req = MetadataRequest[0](topics=[])  # v0: an empty list means every topic
    elif version < 4:
        req = MetadataRequest[version](topics=None)
    else:
        req = MetadataRequest[version](topics=None, allow_auto_topic_creation=False)
    resp = wire.call(wire.any_node(), req, deadline)
    cluster = cluster_from_metadata(resp)
    # node ids -> addresses for kafka-python's own connections, when they changed
    known = {(b.nodeId, b.host, b.port) for b in wire.client.cluster.brokers()}
    if known != {(b.node_id, b.host, b.port) for b in cluster.brokers.values()}:
        wire.client.cluster.update_metadata(resp)
    return cluster


Plan = tuple[list[tuple[Any, Any]], Callable[[Sequence[Any]], Any]]
"""(requests as (node, request), parse(responses in the same order) -> result)"""


def gather(wire: Wire, deadline: Deadline, *plans: Plan) -> list[Any]:
    """Send every plan's requests in one batch; each plan's parsed result, in order."""
    calls = [c for p in plans for c in p[0]]
    responses = wire.call_many(calls, deadline)
    out, i = [], 0
    for reqs, parse in plans:
        out.append(parse(responses[i:i + len(reqs)]))
        i += len(reqs)
    return out


def plan_list_groups(wire: Wire, cluster: Cluster) -> Plan:
    """group -> protocol type, from every broker; and the brokers that did not answer."""
    version = wire.version(ListGroupsRequest, max_version=2)
    nodes = sorted(cluster.brokers)

    def parse(responses: Sequence[Any]) -> tuple[dict[str, str], dict[int, str]]:
        out: dict[str, str] = {}
        failed: dict[int, str] = {}
        for node, resp in zip(nodes, responses, strict=False):
            if isinstance(resp, RequestFailed):
                failed[node] = str(resp.cause)
            elif resp.error_code:
                failed[node] = _err(resp.error_code) or ""
            else:
                for group, protocol_type in resp.groups:
                    out[group] = protocol_type
        return out, failed

    return [(n, ListGroupsRequest[version]()) for n in nodes], parse


def list_groups(wire: Wire, cluster: Cluster, deadline: Deadline) -> tuple[dict[str, str], dict[int, str]]:
    return gather(wire, deadline, plan_list_groups(wire, cluster))[0]  # type: ignore[no-any-return]


def coordinators(wire: Wire, cluster: Cluster, groups: Iterable[str],
                 deadline: Deadline) -> tuple[dict[str, int], dict[str, str]]:
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
    for g, resp in zip(groups, wire.call_many(reqs, deadline), strict=False):
        if isinstance(resp, RequestFailed):
            errors[g] = str(resp.cause)
        elif resp.error_code:
            errors[g] = _err(resp.error_code) or ""
        else:
            found[g] = resp.coordinator_id
    return found, errors


def plan_describe_groups(wire: Wire, coord: Mapping[str, int],
                         protocol_types: Mapping[str, str]) -> Plan:
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

    def parse(responses: Sequence[Any]) -> dict[str, Group]:
        out: dict[str, Group] = {}
        for (node, chunk), resp in zip(chunks, responses, strict=False):
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

    return calls, parse


def describe_groups(wire: Wire, coord: Mapping[str, int], protocol_types: Mapping[str, str],
                    deadline: Deadline) -> dict[str, Group]:
    return gather(wire, deadline, plan_describe_groups(wire, coord, protocol_types))[0]  # type: ignore[no-any-return]


def plan_committed(wire: Wire, cluster: Cluster, coord: Mapping[str, int], flavor: str,
                   partitions: Mapping[str, Iterable[TP]] | None = None) -> Plan:
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

    def parse(responses: Sequence[Any]) -> tuple[dict[str, dict[TP, int]], dict[str, str]]:
        out: dict[str, dict[TP, int]] = {}
        errors: dict[str, str] = {}
        for g, resp in zip(groups, responses, strict=False):
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

    return reqs, parse


def committed(wire: Wire, cluster: Cluster, coord: Mapping[str, int], flavor: str,
              deadline: Deadline, partitions: Mapping[str, Iterable[TP]] | None = None
              ) -> tuple[dict[str, dict[TP, int]], dict[str, str]]:
    return gather(wire, deadline, plan_committed(wire, cluster, coord, flavor, partitions))[0]  # type: ignore[no-any-return]


def _list_offsets_request(version: int, by_topic: Mapping[str, list[int]]) -> Any:
    topics = []
    for topic, parts in by_topic.items():
        rows: list[tuple[int, ...]]
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


def plan_latest_offsets(wire: Wire, cluster: Cluster, tps: Iterable[TP]) -> Plan:
    """ListOffsets(latest) from each partition's leader (chunked): the high-water mark on
    Apache Kafka."""
    by_leader: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    errors: dict[TP, str] = {}
    for topic, part in tps:
        meta = cluster.topics.get(topic)
        p = meta.get(part) if meta else None
        if p is None or p.leader < 0:
            errors[(topic, part)] = "no leader" if p is not None else "unknown partition"
            continue
        by_leader[p.leader][topic].append(part)
    version = wire.version(ListOffsetsRequest, max_version=5)
    calls, sent = [], []
    for leader, by_topic in by_leader.items():
        chunk: dict[str, list[int]] = {}
        n = 0
        for t, ps in list(by_topic.items()) + [("", [])]:
            if (n + len(ps) > LIST_OFFSETS_CHUNK or not t) and chunk:
                calls.append((leader, _list_offsets_request(version, chunk)))
                sent.append(chunk)
                chunk, n = {}, 0
            if t:
                chunk[t] = ps
                n += len(ps)

    def parse(responses: Sequence[Any]) -> tuple[dict[TP, int], dict[TP, str]]:
        out: dict[TP, int] = {}
        errs = dict(errors)
        for chunk, resp in zip(sent, responses, strict=False):
            if isinstance(resp, RequestFailed):
                for t, ps in chunk.items():
                    for p in ps:
                        errs[(t, p)] = str(resp.cause)
                continue
            for topic, parts in resp.topics:
                for row in parts:
                    partition, error_code = row[0], row[1]
                    offset = row[2][0] if version == 0 and row[2] else row[3] if version else -1
                    if error_code:
                        errs[(topic, partition)] = _err(error_code) or ""
                    elif offset >= 0:
                        out[(topic, partition)] = offset
        return out, errs

    return calls, parse


def latest_offsets(wire: Wire, cluster: Cluster, tps: Iterable[TP],
                   deadline: Deadline) -> tuple[dict[TP, int], dict[TP, str]]:
    return gather(wire, deadline, plan_latest_offsets(wire, cluster, tps))[0]  # type: ignore[no-any-return]


def high_watermarks(wire: Wire, cluster: Cluster, tps: Iterable[TP], flavor: str,
                    deadline: Deadline, latest: Mapping[TP, int] | None = None
                    ) -> tuple[dict[TP, int], dict[TP, str]]:
    """High-water marks. On Tansu (compat difference 1) read from a Fetch, positioned by
    ListOffsets (``latest``, when it was read already, saves that round trip)."""
    tps = list(tps)
    errors: dict[TP, str] = {}
    if latest is None or not compat.hwm_from_fetch(flavor):
        found, errors = latest_offsets(wire, cluster, tps, deadline)
    else:
        found = {tp: latest[tp] for tp in tps if tp in latest}
    if compat.hwm_from_fetch(flavor) and found:
        found = _hwm_via_fetch(wire, cluster, found, deadline)
    return found, errors


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


def plan_topic_configs(wire: Wire, topics: Iterable[str], flavor: str) -> Plan:
    version = wire.version(DescribeConfigsRequest, max_version=2)
    names = sorted(topics)
    keys = list(CONFIG_KEYS) if compat.describe_configs_names_keys(flavor) else None
    calls = []
    for i in range(0, len(names), CONFIGS_CHUNK):
        res = [(_TOPIC_RESOURCE, t, keys) for t in names[i:i + CONFIGS_CHUNK]]
        req = (DescribeConfigsRequest[version](resources=res) if version == 0
               else DescribeConfigsRequest[version](resources=res, include_synonyms=False))
        calls.append((wire.any_node(), req))

    def parse(responses: Sequence[Any]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        errors: dict[str, str] = {}
        for resp in responses:
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

    return calls, parse


def topic_configs(wire: Wire, topics: Iterable[str], flavor: str,
                  deadline: Deadline) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    return gather(wire, deadline, plan_topic_configs(wire, topics, flavor))[0]  # type: ignore[no-any-return]


def all_partitions(cluster: Cluster) -> list[TP]:
    return [(t, p.partition) for t, topic in cluster.topics.items() for p in topic.partitions]


def nonempty(latest: Mapping[TP, int]) -> list[TP]:
    """Partitions holding data: on Tansu the ones OffsetFetch must name (compat 2)."""
    return [tp for tp, off in latest.items() if off > 0]


def sample(wire: Wire, cluster: Cluster, coord: Mapping[str, int], flavor: str,
           deadline: Deadline, groups: Iterable[str] | None = None,
           known: Mapping[str, Iterable[TP]] | None = None,
           latest: Mapping[TP, int] | None = None,
           describe: Mapping[str, str] | None = None
           ) -> tuple[Sample, dict[str, str], dict[str, Group] | None]:
    """Committed offsets of ``groups`` (default: all) and the high-water marks of their
    partitions, read as close together as the protocol allows. ``known``: the partitions
    each group is known to have committed (a re-reading of the same groups). ``latest``:
    ListOffsets of every partition, when already read. ``describe``: also describe the
    groups (group -> protocol type), in the same round trip as their offsets."""
    chosen = {g: coord[g] for g in (groups if groups is not None else coord) if g in coord}
    at = time.time()
    partitions = known
    if partitions is None and compat.offset_fetch_lists_partitions(flavor):
        # compat difference 2: the partitions must be named, and Tansu's cost grows with
        # groups x partitions; a commit on a partition without data has nothing to lag
        if latest is None:
            latest, _ = latest_offsets(wire, cluster, all_partitions(cluster), deadline)
        with_data = nonempty(latest)
        partitions = {g: with_data for g in chosen}
    plans = [plan_committed(wire, cluster, chosen, flavor, partitions)]
    if describe is not None:
        plans.append(plan_describe_groups(wire, chosen, describe))
    results = gather(wire, deadline, *plans)
    offs, errors = results[0]
    tps = {tp for o in offs.values() for tp in o}
    hwm, _ = high_watermarks(wire, cluster, tps, flavor, deadline, latest=latest)
    return Sample(at=at, committed=offs, hwm=hwm), errors, (results[1] if describe is not None else None)
