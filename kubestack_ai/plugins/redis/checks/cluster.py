"""Cluster: state, slot coverage, failed, hung and unreachable nodes, replica coverage,
open slots and failovers, judged across nodes.

Severity follows impact, as the exporter's mixin and ``redis-cli --cluster check`` do:
critical only when slots are not served (a master holding slots is down or failed,
slots unassigned, ``cluster_state:fail``); a node down that serves no slot (a replica, a
failed-over master) is a warning, and so is the ``fail?`` (pfail) window before the
majority decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...base import Run
from ...models import Severity
from ..topology import Topology

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO
SLOTS = 16384
RANGES_NAMED = 20


def _slot_set(slots: Iterable[Any]) -> set[int]:
    out: set[int] = set()
    for s in slots:
        lo, hi = (s[0], s[-1]) if isinstance(s, (list, tuple)) else (s, s)
        out.update(range(int(lo), int(hi) + 1))
    return out


def slot_ranges(slots: Iterable[int], limit: int = RANGES_NAMED) -> list[str]:
    """``[0, 1, 2, 7]`` -> ``["0-2", "7"]`` (at most ``limit`` ranges, then ``"..."``)."""
    out: list[str] = []
    run_lo = prev = None
    for s in sorted(slots):
        if prev is not None and s == prev + 1:
            prev = s
            continue
        if run_lo is not None:
            out.append(f"{run_lo}-{prev}" if prev != run_lo else str(run_lo))
        run_lo = prev = s
    if run_lo is not None:
        out.append(f"{run_lo}-{prev}" if prev != run_lo else str(run_lo))
    return out if len(out) <= limit else [*out[:limit], f"... {len(out) - limit} more"]


def was_promoted(info: dict[str, Any]) -> bool:
    """A master that was a replica until a failover since its start: INFO's
    ``second_repl_offset`` (the offset at which it took over) is set, with the old
    master's replication id kept as ``master_replid2``."""
    return info.get("role") == "master" and int(info.get("second_repl_offset", -1) or -1) >= 0


def _flags(node: dict[str, Any]) -> list[str]:
    return str(node.get("flags", "")).split(",")


def check(run: Run, topo: Topology) -> None:
    views = {addr: d.cluster_info for addr, d in topo.data.items() if d.cluster_info is not None}
    seen_nodes = {addr: d.cluster_nodes or {} for addr, d in topo.data.items()}
    run.metric("cluster_nodes_known", len(topo.nodes))
    run.metric("cluster_nodes_unreachable", len(topo.unreachable))
    if not views and not topo.unreachable:
        return
    layout = topo.nodes  # addr -> parsed CLUSTER NODES line, as the seed node sees it
    _unreachable(run, topo, seen_nodes)
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
    _slot_views(run, views, seen_nodes, layout)
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
    _node_flags(run, topo, seen_nodes)
    _replica_coverage(run, topo)
    _open_slots(run, topo, seen_nodes)
    _failovers(run, topo, views, seen_nodes)


def _owners(nodes: dict[str, dict[str, Any]]) -> dict[int, str]:
    """slot -> the address that serves it, in one node's CLUSTER NODES."""
    out: dict[int, str] = {}
    for addr, n in nodes.items():
        for slot in _slot_set(n.get("slots", [])):
            out[slot] = addr
    return out


def _slot_views(run: Run, views: dict[str, dict[str, Any]],
                seen_nodes: dict[str, dict[str, dict[str, Any]]],
                layout: dict[str, dict[str, Any]]) -> None:
    """Slot coverage from each node's own view (CLUSTER NODES), never one node's ranges
    beside another's count; the nodes whose slot map differs from the others' are named
    (``redis-cli --cluster check``: "Nodes don't agree about configuration")."""
    maps = {addr: _owners(seen_nodes[addr]) for addr in views if seen_nodes.get(addr)}
    if not maps:
        maps = {"": _owners(layout)}
    counts: dict[tuple[tuple[int, str], ...], list[str]] = {}
    for addr, owners in maps.items():
        counts.setdefault(tuple(sorted(owners.items())), []).append(addr)
    agreed = max(counts.values(), key=len) if len(counts) > 1 else []
    differing = sorted(a for a in maps if a not in agreed) if len(counts) > 1 else []
    uncovered = {addr: set(range(SLOTS)) - set(owners) for addr, owners in maps.items()}
    uncovered = {a: m for a, m in uncovered.items() if m}
    assigned = {a: int(views[a].get("cluster_slots_assigned", SLOTS)) for a in views}
    short = {a: n for a, n in assigned.items() if n < SLOTS}
    if uncovered or short:
        per_view: dict[str, dict[str, Any]] = {
            a: {"cluster_slots_assigned": assigned.get(a, SLOTS - len(uncovered.get(a, ()))),
                "unassigned": slot_ranges(uncovered.get(a, set()))}
            for a in sorted(set(uncovered) | set(short))}
        everywhere = set.intersection(*uncovered.values()) if len(uncovered) == len(maps) \
            else set()
        if everywhere:
            title = (f"{len(everywhere)} of {SLOTS} slots are assigned to no node: "
                     f"{', '.join(slot_ranges(everywhere, 5))}")
        else:
            worst = max(per_view, key=lambda a: len(uncovered.get(a, ())))
            title = (f"{worst} sees {len(uncovered.get(worst, ()))} of {SLOTS} slots unassigned "
                     f"({', '.join(per_view[worst]['unassigned'][:5])}) that "
                     f"{len(maps) - len(uncovered)} other node(s) still route to a node")
        run.finding("redis.cluster.slots_uncovered", C, title,
                    evidence={"cluster_slots_assigned": min(assigned.values(), default=SLOTS),
                              "slots_total": SLOTS, "unassigned": slot_ranges(everywhere),
                              "by_node": per_view, "nodes_agree": not differing,
                              "differing_nodes": differing},
                    suggestion="Assign the missing slots (redis-cli --cluster fix); a node "
                               "that lost slots its peers still route to it (CLUSTER DELSLOTS, "
                               "a reset) answers their keys with CLUSTERDOWN: give them back "
                               "with CLUSTER ADDSLOTS on that node or CLUSTER SETSLOT ... NODE.")
    elif differing:
        run.finding("redis.cluster.nodes_disagree", W,
                    f"Nodes don't agree about the slot configuration: {', '.join(differing)} "
                    "see other owners than the rest",
                    evidence={"differing_nodes": differing, "agreeing_nodes": sorted(agreed)},
                    suggestion="Usually transient during a failover or resharding; if it "
                               "stays, redis-cli --cluster fix.")


def _cluster_view_of(addr: str, seen_nodes: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """How the reachable nodes see ``addr``: its flags and link state, by observer."""
    flags: dict[str, list[str]] = {}
    link: dict[str, list[str]] = {}
    for seen_by, nodes in sorted(seen_nodes.items()):
        n = nodes.get(addr)
        if n is None:
            continue
        flags.setdefault(str(n.get("flags")), []).append(seen_by)
        link.setdefault("connected" if n.get("connected") else "disconnected", []).append(seen_by)
    return {"flags": flags, "link": link}


def _unreachable(run: Run, topo: Topology, seen_nodes: dict[str, dict[str, dict[str, Any]]]) -> None:
    for addr, err in sorted(topo.unreachable.items()):
        node = topo.nodes.get(addr, {})
        flags = str(node.get("flags", ""))
        slots = _slot_set(node.get("slots", []))
        is_master = "master" in flags
        view = _cluster_view_of(addr, seen_nodes)
        hung = "did not answer within" in err
        sev = C if is_master and slots else W
        what = "does not answer (hung)" if hung else "is unreachable"
        run.finding("redis.cluster.node_unreachable", sev,
                    f"Cluster node {addr} ({'master' if is_master else 'replica'}) {what}"
                    + (f"; its {len(slots)} slots are not served" if sev is C else
                       "; it serves no slot"),
                    evidence={"node": addr, "node_id": node.get("node_id"), "flags": flags,
                              "slots": len(slots), "slot_ranges": slot_ranges(slots),
                              "error": err, "timeout_s": topo.node_timeout or None,
                              "cluster_view": view},
                    suggestion=("Look at the node's host (a stopped, swapping or blocked "
                                "process); the cluster fails it over after cluster-node-timeout "
                                "if a replica can take its slots." if hung else
                                "Start the node or fail over its slots to a replica "
                                "(CLUSTER FAILOVER on the replica); check the host and network."))


def _node_flags(run: Run, topo: Topology, seen_nodes: dict[str, dict[str, dict[str, Any]]]) -> None:
    failed: dict[str, dict[str, Any]] = {}
    pfail: dict[str, set[str]] = {}
    for seen_by, nodes in seen_nodes.items():
        for addr, node in nodes.items():
            flags = _flags(node)
            if "fail" in flags:
                e = failed.setdefault(addr, {"node": addr, "node_id": node.get("node_id"),
                                             "flags": node.get("flags"), "seen_by": [],
                                             "slots": sorted(_slot_set(node.get("slots", [])))})
                e["seen_by"].append(seen_by)
            elif "fail?" in flags:
                pfail.setdefault(addr, set()).add(seen_by)
    for addr, e in sorted(failed.items()):
        slots = e.pop("slots")
        role = "master" if "master" in str(e["flags"]) else "replica"
        e.update(role=role, slots=len(slots), slot_ranges=slot_ranges(slots))
        sev = C if slots else W
        run.finding("redis.cluster.node_failed", sev,
                    f"Cluster node {addr} ({role}) is marked failed"
                    + (f"; its {len(slots)} slots are not served" if slots
                       else "; it serves no slot"),
                    evidence=e, suggestion=(
                        "Restart the node or fail its slots over (CLUSTER FAILOVER FORCE on a "
                        "replica)." if slots else
                        "Restart the node: it rejoins as a replica; until then the cluster "
                        "has one copy fewer."))
    for addr, seen in sorted(pfail.items()):
        if addr not in failed:
            run.finding("redis.cluster.node_pfail", W,
                        f"Cluster node {addr} is not answering its peers (pfail)",
                        evidence={"node": addr, "seen_by": sorted(seen)},
                        suggestion="Check the node and the network; it will be marked failed "
                                   "when a majority of masters agree.")


def _replica_coverage(run: Run, topo: Topology) -> None:
    """A master holding slots with replicas none of which is healthy (failed, pfail, or
    unreachable from here) lost its failover target: a warning. A master that never had
    a replica (``--cluster-replicas 0``) is a design choice: INFO."""
    masters = {n["node_id"]: (a, n) for a, n in topo.nodes.items()
               if "master" in _flags(n) and n.get("slots")}
    replicas: dict[str, list[str]] = {}
    healthy: dict[str, list[str]] = {}
    for a, n in topo.nodes.items():
        flags = _flags(n)
        if "slave" not in flags:
            continue
        replicas.setdefault(n.get("master_id", ""), []).append(a)
        if not ({"fail", "fail?"} & set(flags)) and a not in topo.unreachable:
            healthy.setdefault(n.get("master_id", ""), []).append(a)
    lonely = sorted(a for nid, (a, _) in masters.items() if nid not in replicas)
    if lonely:
        run.finding("redis.cluster.master_without_replica", INFO,
                    f"{len(lonely)} masters have no replica: losing one loses its slots",
                    evidence={"masters": lonely},
                    suggestion="Add a replica per master (redis-cli --cluster add-node --cluster-slave).")
    lost = {a: {"slot_ranges": slot_ranges(_slot_set(n.get("slots", []))),
                "replicas_down": sorted(replicas[nid])}
            for nid, (a, n) in sorted(masters.items(), key=lambda kv: kv[1][0])
            if nid in replicas and not healthy.get(nid)}
    if lost:
        run.finding("redis.cluster.master_replica_lost", W,
                    f"{len(lost)} masters have no healthy replica: "
                    f"{', '.join(sorted(lost))} (a failure now loses their slots)",
                    evidence={"masters": lost},
                    suggestion="Restart the failed replicas (they resync) or add new ones "
                               "(redis-cli --cluster add-node --cluster-slave).")


def _open_slots(run: Run, topo: Topology, seen_nodes: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Slots left migrating/importing (an interrupted resharding): only the node itself
    shows them, on its ``myself`` line."""
    by_id = {n.get("node_id"): a for a, n in topo.nodes.items()}
    opened: list[dict[str, Any]] = []
    for addr, nodes in sorted(seen_nodes.items()):
        me = next((n for n in nodes.values() if "myself" in _flags(n)), None)
        for m in (me or {}).get("migrations", []):
            peer = by_id.get(m.get("node_id"), m.get("node_id"))
            opened.append({"slot": int(m["slot"]), "node": addr, "state": m.get("state"),
                           "to" if m.get("state") == "migrating" else "from": peer})
    if opened:
        slots = sorted({o["slot"] for o in opened})
        run.finding("redis.cluster.open_slots", W,
                    f"{len(slots)} slots are left open (migrating/importing): "
                    f"{', '.join(slot_ranges(slots, 5))}",
                    evidence={"slots": slot_ranges(slots), "open": opened[:50]},
                    suggestion="A resharding was interrupted: finish or roll it back with "
                               "redis-cli --cluster fix HOST:PORT (then redis-cli --cluster "
                               "check); keys in these slots answer ASK redirects until then.")


def _previous(run: Run, name: str) -> tuple[Any, Any] | None:
    for snap in reversed(run.history):
        if name in snap.metrics:
            return snap.at, snap.metrics[name]
    return None


def _failovers(run: Run, topo: Topology, views: dict[str, dict[str, Any]],
               seen_nodes: dict[str, dict[str, dict[str, Any]]]) -> None:
    """A master change, from the stored history (slots that moved to another master
    since the last run) or, without history, from a master whose INFO says it was
    promoted (``master_replid2`` set). INFO while the new layout is healthy; a warning
    while the old master is still down."""
    epoch = max((int(ci.get("cluster_current_epoch", 0)) for ci in views.values()), default=0)
    run.metric("cluster_current_epoch", epoch)
    owners: dict[str, list[str]] = {}
    by_slot: dict[int, str] = {}
    for a, n in topo.nodes.items():
        if "master" in _flags(n) and n.get("slots"):
            s = _slot_set(n["slots"])
            owners[a] = slot_ranges(s, 1000)
            by_slot.update(dict.fromkeys(s, a))
    run.metric("cluster_masters", owners)
    # down now: unreachable from here, or flagged by a node read in this run (the
    # connect-time layout may be a moment older)
    down = {a for nodes in seen_nodes.values() for a, n in nodes.items()
            if {"fail", "fail?"} & set(_flags(n))} | set(topo.unreachable)
    prev = _previous(run, "cluster_masters")
    moves: dict[tuple[str, str], set[int]] = {}
    if prev is not None and isinstance(prev[1], dict):
        for old, ranges in prev[1].items():
            for r in ranges:
                lo, _, hi = str(r).partition("-")
                for slot in range(int(lo), int(hi or lo) + 1):
                    new = by_slot.get(slot)
                    if new is not None and new != old:
                        moves.setdefault((old, new), set()).add(slot)
    # a failover, not a resharding: the old master is down or a replica now, or the new
    # one was promoted (slots moved between two healthy masters are a resharding)
    moves = {(old, new): slots for (old, new), slots in moves.items()
             if old in down or "slave" in _flags(topo.nodes.get(old, {}))
             or (new in topo.data and was_promoted(topo.data[new].info))}
    promoted = {a: d.info for a, d in topo.data.items() if was_promoted(d.info) and a in owners}
    if moves:
        for (old, new), slots in sorted(moves.items()):
            info = topo.data[new].info if new in topo.data else {}
            still_down = old in down
            run.finding("redis.cluster.failover", W if still_down else INFO,
                        f"Cluster failover: slots {', '.join(slot_ranges(slots, 3))} moved "
                        f"from {old} to {new}" + ("; the old master is still down"
                                                  if still_down else ""),
                        evidence={"from": old, "to": new, "slots": slot_ranges(slots),
                                  "since": str(prev[0]) if prev else None,
                                  "cluster_current_epoch": epoch,
                                  "previous_epoch": _prev_value(run, "cluster_current_epoch"),
                                  "old_master_flags": topo.nodes.get(old, {}).get("flags"),
                                  "old_master_down": still_down,
                                  "master_replid2": info.get("master_replid2"),
                                  "second_repl_offset": info.get("second_repl_offset")},
                        suggestion=("Bring the old master back: it rejoins as a replica of "
                                    "the new one." if still_down else
                                    "Nothing to do if the failover was expected; clients "
                                    "follow MOVED redirects."))
    elif prev is None and promoted:
        failed_masters = sorted(a for a, n in topo.nodes.items()
                                if "master" in _flags(n) and "fail" in _flags(n)
                                and not n.get("slots"))
        run.finding("redis.cluster.failover", W if failed_masters else INFO,
                    f"Cluster failover: {', '.join(sorted(promoted))} "
                    f"{'was' if len(promoted) == 1 else 'were'} promoted from replica"
                    + (f"; failed master(s) {', '.join(failed_masters)} still down"
                       if failed_masters else ""),
                    evidence={"to": sorted(promoted), "from_candidates": failed_masters,
                              "cluster_current_epoch": epoch,
                              "master_replid2": {a: i.get("master_replid2")
                                                 for a, i in sorted(promoted.items())},
                              "second_repl_offset": {a: i.get("second_repl_offset")
                                                     for a, i in sorted(promoted.items())},
                              "since": "the promoted node's start (no stored history)"},
                    suggestion=("Bring the failed master back: it rejoins as a replica." if
                                failed_masters else "Nothing to do if the failover was expected."))


def _prev_value(run: Run, name: str) -> Any:
    prev = _previous(run, name)
    return prev[1] if prev else None
