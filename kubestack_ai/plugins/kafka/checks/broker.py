"""Category ``broker``: every broker reachable, metadata consistent (a controller,
advertised addresses that resolve), ISR status, under-replicated and offline partitions.

ISR shrink, offline partitions and missing brokers need several brokers; the rules are
pure functions of :class:`Cluster` so the tests feed them kafka-python's own
MetadataResponse structures for such clusters."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

from ...base import Run, category
from ...models import Severity
from ..model import Cluster
from ..report import F, emit, named, th


def resolve(host: str) -> str | None:
    """None when ``host`` resolves, else why not."""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return None
    except OSError as e:
        return str(e.strerror or e)


def metadata_findings(cluster: Cluster, resolver: Callable[[str], str | None] = resolve) -> list[F]:
    out: list[F] = []
    ids = sorted(cluster.brokers)
    if cluster.controller_id is None or cluster.controller_id < 0:
        out.append(F("kafka.broker.no_controller", Severity.CRITICAL,
                     "The cluster reports no active controller",
                     {"controller_id": cluster.controller_id, "brokers": ids},
                     "Without a controller no leader is elected and no topic change is applied: "
                     "check the controller quorum (KRaft controllers or ZooKeeper) and its logs."))
    elif cluster.controller_id not in cluster.brokers:
        out.append(F("kafka.broker.controller_unknown", Severity.WARNING,
                     f"Controller {cluster.controller_id} is not among the brokers in the metadata",
                     {"controller_id": cluster.controller_id, "brokers": ids},
                     "Normal for a KRaft cluster with dedicated controllers; otherwise the "
                     "metadata is stale: check the brokers' metadata logs."))
    unresolved = []
    seen: dict[str, int] = {}
    dup = []
    for b in cluster.brokers.values():
        why = resolver(b.host)
        if why:
            unresolved.append({"node_id": b.node_id, "address": b.address, "error": why})
        if b.address in seen:
            dup.append({"address": b.address, "node_ids": [seen[b.address], b.node_id]})
        seen.setdefault(b.address, b.node_id)
    if unresolved:
        out.append(F("kafka.broker.address_unresolvable", Severity.CRITICAL,
                     f"{len(unresolved)} broker(s) advertise an address that does not resolve",
                     {"brokers": unresolved},
                     "Clients connect to the advertised listener: fix advertised.listeners or DNS."))
    if dup:
        out.append(F("kafka.broker.duplicate_address", Severity.CRITICAL,
                     "Several brokers advertise the same address", {"duplicates": dup},
                     "Each broker needs its own advertised.listeners address."))
    # replicas placed on brokers absent from the metadata: those brokers are down
    missing: dict[int, int] = {}
    for p in cluster.partitions():
        for r in p.replicas:
            if r not in cluster.brokers:
                missing[r] = missing.get(r, 0) + 1
    if missing:
        out.append(F("kafka.broker.missing", Severity.CRITICAL,
                     f"{len(missing)} broker(s) hold replicas but are not in the cluster",
                     {"missing_brokers": {str(k): v for k, v in sorted(missing.items())},
                      "live_brokers": ids},
                     "A broker that hosts replicas has left the cluster: restart it or "
                     "reassign its partitions."))
    return out


def isr_findings(cluster: Cluster, min_isr: Mapping[str, int]) -> list[F]:
    """Under-replicated (ISR smaller than replicas), below min.insync.replicas, and offline
    (no leader) partitions, each named."""
    urp, below, offline = [], [], []
    for p in cluster.partitions():
        name = f"{p.topic}:{p.partition}"
        if p.offline_leader:
            offline.append({"partition": name, "replicas": list(p.replicas),
                            "offline_replicas": list(p.offline)})
            continue
        if p.under_replicated:
            row = {"partition": name, "leader": p.leader, "replicas": list(p.replicas),
                   "isr": list(p.isr)}
            if p.offline:
                row["offline_replicas"] = list(p.offline)
            urp.append(row)
            need = min_isr.get(p.topic)
            if need is not None and len(p.isr) < need:
                below.append({**row, "min_insync_replicas": need})
    out: list[F] = []
    if offline:
        out.append(F("kafka.broker.offline_partitions", Severity.CRITICAL,
                     f"{len(offline)} partition(s) have no leader",
                     {"count": len(offline), "partitions": named(offline)},
                     "Nothing can be produced to or consumed from these partitions: bring their "
                     "replicas' brokers back; unclean election loses data, use it last."))
    if below:
        out.append(F("kafka.broker.below_min_isr", Severity.CRITICAL,
                     f"{len(below)} partition(s) have fewer in-sync replicas than min.insync.replicas",
                     {"count": len(below), "partitions": named(below)},
                     "Producers with acks=all are refused on these partitions: restore the "
                     "lagging replicas' brokers."))
    if urp:
        out.append(F("kafka.broker.under_replicated_partitions", Severity.WARNING,
                     f"{len(urp)} partition(s) are under-replicated (ISR smaller than replicas)",
                     {"count": len(urp), "partitions": named(urp)},
                     "Check the brokers missing from the ISR: down, slow disks, or network; "
                     "replica.lag.time.max.ms decides when they drop out."))
    return out


def reach_findings(cluster: Cluster, reach: Mapping[int, str | None]) -> list[F]:
    down = [{"node_id": n, "address": cluster.brokers[n].address, "error": err}
            for n, err in sorted(reach.items()) if err is not None and n in cluster.brokers]
    if not down:
        return []
    return [F("kafka.broker.unreachable", Severity.CRITICAL,
              f"{len(down)} of {len(cluster.brokers)} broker(s) cannot be reached",
              {"brokers": down},
              "The broker is in the metadata but refuses or drops connections: check that "
              "it runs and that its advertised listener is reachable from clients.")]


class BrokerChecks:
    @category("broker")
    def check_broker(self, run: Run) -> None:
        cluster: Cluster = self._cluster(run)  # type: ignore[attr-defined]
        run.metric("brokers", len(cluster.brokers))
        run.metric("controller_id", cluster.controller_id)
        run.metric("cluster_id", cluster.cluster_id)
        parts = cluster.partitions()
        run.metric("partitions", len(parts))
        run.metric("under_replicated_partitions", sum(1 for p in parts if p.under_replicated
                                                      and not p.offline_leader))
        run.metric("offline_partitions", sum(1 for p in parts if p.offline_leader))
        run.metric("leaders_per_broker", {str(k): v for k, v in sorted(cluster.leaders_per_broker().items())})
        reach = self._wire.reach(sorted(cluster.brokers), run.deadline,  # type: ignore[attr-defined]
                                 run.deadline.remaining(cap=th(run, "request_timeout_s")))
        configs: dict[str, dict[str, Any]] = run.data.get("configs", {})
        min_isr = {t: int(c["min.insync.replicas"]) for t, c in configs.items()
                   if str(c.get("min.insync.replicas", "")).isdigit()}
        emit(run, reach_findings(cluster, reach))
        emit(run, metadata_findings(cluster))
        emit(run, isr_findings(cluster, min_isr))
