"""Cluster: state, slot coverage, failed and unreachable nodes (judged across nodes)."""

from __future__ import annotations

from typing import Any

from ...base import Run
from ...models import Severity
from ..topology import Topology

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO
SLOTS = 16384


def _slot_count(slots: list[Any]) -> int:
    n = 0
    for s in slots:
        lo, hi = (s[0], s[-1]) if isinstance(s, (list, tuple)) else (s, s)
        n += int(hi) - int(lo) + 1
    return n


def check(run: Run, topo: Topology) -> None:
    views = {addr: d.cluster_info for addr, d in topo.data.items() if d.cluster_info is not None}
    seen_nodes = {addr: d.cluster_nodes or {} for addr, d in topo.data.items()}
    run.metric("cluster_nodes_known", len(topo.nodes))
    run.metric("cluster_nodes_unreachable", len(topo.unreachable))
    if not views and not topo.unreachable:
        return
    layout = topo.nodes  # addr -> parsed CLUSTER NODES line, as the seed node sees it
    for addr, err in sorted(topo.unreachable.items()):
        node = layout.get(addr, {})
        flags = str(node.get("flags", ""))
        slots = _slot_count(node.get("slots", []))
        is_master = "master" in flags
        run.finding("redis.cluster.node_unreachable", C if is_master and slots else W,
                    f"Cluster node {addr} ({'master' if is_master else 'replica'}) is unreachable",
                    evidence={"node": addr, "node_id": node.get("node_id"), "flags": flags,
                              "slots": slots, "error": err},
                    suggestion="Start the node or fail over its slots to a replica "
                               "(CLUSTER FAILOVER on the replica); check the host and network.")
    states = {addr: str(ci.get("cluster_state")) for addr, ci in views.items()}
    run.metric("cluster_state", "ok" if states and all(s == "ok" for s in states.values())
               else "fail")
    bad = {a: s for a, s in states.items() if s != "ok"}
    if bad:
        run.finding("redis.cluster.state_fail", C,
                    f"cluster_state is fail on {len(bad)} of {len(states)} reachable nodes",
                    evidence={"cluster_state": bad},
                    suggestion="Some slots are not served: bring failed masters back or fail "
                               "them over, then check CLUSTER INFO.")
    worst = {k: max(int(ci.get(k, 0)) for ci in views.values())
             for k in ("cluster_slots_fail", "cluster_slots_pfail")} if views else {}
    assigned = min((int(ci.get("cluster_slots_assigned", 0)) for ci in views.values()),
                   default=SLOTS)
    run.metric("cluster_slots_assigned", assigned)
    if assigned < SLOTS:
        run.finding("redis.cluster.slots_uncovered", C,
                    f"Only {assigned} of {SLOTS} slots are assigned",
                    evidence={"cluster_slots_assigned": assigned, "slots_total": SLOTS},
                    suggestion="Assign the missing slots (redis-cli --cluster fix).")
    if worst.get("cluster_slots_fail"):
        run.finding("redis.cluster.slots_fail", C,
                    f"{worst['cluster_slots_fail']} slots are served by failed nodes",
                    evidence={"cluster_slots_fail": worst["cluster_slots_fail"]},
                    suggestion="Fail over or restart the failed masters.")
    elif worst.get("cluster_slots_pfail"):
        run.finding("redis.cluster.slots_pfail", W,
                    f"{worst['cluster_slots_pfail']} slots are served by nodes some peers "
                    "cannot reach",
                    evidence={"cluster_slots_pfail": worst["cluster_slots_pfail"]},
                    suggestion="Check the network between the nodes; a failover may follow.")
    _flags(run, topo, seen_nodes)


def _flags(run: Run, topo: Topology, seen_nodes: dict[str, dict[str, Any]]) -> None:
    failed: dict[str, dict[str, Any]] = {}
    pfail: dict[str, set[str]] = {}
    for seen_by, nodes in seen_nodes.items():
        for addr, node in nodes.items():
            flags = str(node.get("flags", "")).split(",")
            if "fail" in flags:
                e = failed.setdefault(addr, {"node": addr, "node_id": node.get("node_id"),
                                             "flags": node.get("flags"), "seen_by": []})
                e["seen_by"].append(seen_by)
            elif "fail?" in flags:
                pfail.setdefault(addr, set()).add(seen_by)
    for addr, e in sorted(failed.items()):
        run.finding("redis.cluster.node_failed", C, f"Cluster node {addr} is marked failed",
                    evidence=e, suggestion="Restart the node; its replica should have been "
                                           "promoted (check the masters' slots).")
    for addr, seen in sorted(pfail.items()):
        if addr not in failed:
            run.finding("redis.cluster.node_pfail", W,
                        f"Cluster node {addr} is not answering its peers (pfail)",
                        evidence={"node": addr, "seen_by": sorted(seen)},
                        suggestion="Check the node and the network; it will be marked failed "
                                   "when a majority of masters agree.")
    masters = {n["node_id"]: a for a, n in topo.nodes.items()
               if "master" in str(n.get("flags", "")) and n.get("slots")}
    with_replica = {n.get("master_id") for n in topo.nodes.values()
                    if "slave" in str(n.get("flags", ""))}
    lonely = sorted(a for nid, a in masters.items() if nid not in with_replica)
    if lonely:
        run.finding("redis.cluster.master_without_replica", INFO,
                    f"{len(lonely)} masters have no replica: losing one loses its slots",
                    evidence={"masters": lonely},
                    suggestion="Add a replica per master (redis-cli --cluster add-node --cluster-slave).")
