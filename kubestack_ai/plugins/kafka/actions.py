"""Actions ``execute`` runs. The sandbox has already checked the whitelist (a dangerous
action needs the target's allow_actions or the config's allowed_actions) and the
manager audits every attempt; this module only does the work, and refuses what Kafka
would refuse, with a clear reason, before sending anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka.protocol.commit import OffsetCommitRequest

from ..deadline import Deadline
from ..errors import ConfigError, PluginError
from . import collect
from .model import TP, Cluster
from .report import tp_name
from .wire import RequestFailed, Wire

DESCRIBE_GROUP = "describe_group"
RESET_OFFSETS_LATEST = "reset_offsets_latest"
ACTIONS = (DESCRIBE_GROUP, RESET_OFFSETS_LATEST)
DANGEROUS = (RESET_OFFSETS_LATEST,)


class ActionError(PluginError):
    """The action was allowed but cannot be done (the group is active, unknown...)."""


def _group_param(params: Mapping[str, Any]) -> str:
    group = params.get("group")
    if not isinstance(group, str) or not group:
        raise ConfigError("parameter 'group' (the consumer group id) is required")
    return group


def describe_group(wire: Wire, cluster: Cluster, flavor: str, params: Mapping[str, Any],
                   deadline: Deadline) -> dict[str, Any]:
    group = _group_param(params)
    coord, errors = collect.coordinators(wire, cluster, [group], deadline)
    if group not in coord:
        raise ActionError(f"group {group!r}: no coordinator ({errors.get(group)})")
    g = collect.describe_groups(wire, coord, {}, deadline)[group]
    s, _, _ = collect.sample(wire, cluster, coord, flavor, deadline)
    lag = s.lag(group)
    return {"group": group, "state": g.state, "members": [m.member_id for m in g.members],
            "lag": sum(lag.values()),
            "partitions": {tp_name(tp): {"committed": s.committed[group][tp], "lag": v}
                           for tp, v in sorted(lag.items())}}


def reset_offsets_latest(wire: Wire, cluster: Cluster, flavor: str, params: Mapping[str, Any],
                         deadline: Deadline) -> dict[str, Any]:
    """Commit each partition's high-water mark as the group's offset: the group skips
    everything not yet consumed. Only for a group with no active members (Kafka refuses
    commits from outside a live group's generation anyway)."""
    group = _group_param(params)
    topics = params.get("topics")
    if topics is not None and (not isinstance(topics, list) or not all(isinstance(t, str) for t in topics)):
        raise ConfigError("parameter 'topics' must be a list of topic names")
    coord, errors = collect.coordinators(wire, cluster, [group], deadline)
    if group not in coord:
        raise ActionError(f"group {group!r}: no coordinator ({errors.get(group)})")
    g = collect.describe_groups(wire, coord, {}, deadline)[group]
    if g.members:
        raise ActionError(f"group {group!r} has {len(g.members)} active member(s) "
                          f"(state {g.state}): stop its consumers first")
    before, _ = collect.committed(wire, cluster, coord, flavor, deadline)
    current = before.get(group, {})
    if topics:
        unknown = [t for t in topics if t not in cluster.topics]
        if unknown:
            raise ActionError(f"unknown topic(s): {', '.join(unknown)}")
        tps: list[TP] = [(t, p.partition) for t in topics for p in cluster.topics[t].partitions]
    else:
        tps = sorted(current)
    if not tps:
        raise ActionError(f"group {group!r} has no committed offsets and no topics were given")
    hwm, hwm_errors = collect.high_watermarks(wire, cluster, tps, flavor, deadline)
    if hwm_errors:
        raise ActionError("cannot read the high-water marks of "
                          + ", ".join(f"{tp_name(tp)} ({e})" for tp, e in sorted(hwm_errors.items())))
    plan = {tp_name(tp): {"from": current.get(tp), "to": hwm[tp]} for tp in tps}
    if params.get("dry_run"):
        return {"group": group, "dry_run": True, "would_commit": plan}
    by_topic: dict[str, list[tuple[int, int, str]]] = {}
    for (t, p) in tps:
        by_topic.setdefault(t, []).append((p, hwm[(t, p)], ""))
    version = wire.version(OffsetCommitRequest, max_version=2)
    if version < 2:
        raise ActionError("the broker does not support OffsetCommit v2")
    req = OffsetCommitRequest[2](group, -1, "", -1, list(by_topic.items()))
    resp = wire.call(coord[group], req, deadline)
    failed = {f"{t}:{row[0]}": row[1] for t, rows in resp.topics for row in rows if row[1]}
    if failed:
        raise ActionError(f"the coordinator refused some commits (error codes): {failed}")
    return {"group": group, "partitions": plan}


def run_action(action: str, wire: Wire, cluster: Cluster, flavor: str, params: Mapping[str, Any],
               deadline: Deadline) -> dict[str, Any]:
    if action == DESCRIBE_GROUP:  # read-only: a dry run is the run
        return describe_group(wire, cluster, flavor, params, deadline)
    if action == RESET_OFFSETS_LATEST:
        return reset_offsets_latest(wire, cluster, flavor, params, deadline)
    raise ConfigError(f"action {action!r} has no implementation")


__all__ = ["ACTIONS", "DANGEROUS", "ActionError", "RequestFailed", "run_action"]
