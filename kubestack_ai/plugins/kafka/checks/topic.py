"""Category ``topic``: configuration risks (min.insync.replicas against the replication
factor, unclean leader election, retention and cleanup policy), partitions against
brokers, replication factor, leader distribution and preferred-leader imbalance."""

from __future__ import annotations

from collections.abc import Mapping

from ...base import Run, category
from ...models import Severity
from .. import compat
from ..constants import CLEANUP, CLEANUP_POLICIES, MIN_ISR, RETENTION_BYTES, RETENTION_MS, UNCLEAN
from ..model import Cluster
from ..report import F, emit, named, th


def _int(v: object) -> int | None:
    try:
        return int(str(v))
    except (TypeError, ValueError):
        return None


def replication_findings(cluster: Cluster, min_rf: int) -> list[F]:
    brokers = len(cluster.brokers)
    rf1 = sorted(n for n, t in cluster.topics.items() if t.partitions and t.replication_factor == 1)
    low = sorted(n for n, t in cluster.topics.items()
                 if brokers >= min_rf and 1 < t.replication_factor < min_rf)
    errors = sorted((n, t.error) for n, t in cluster.topics.items() if t.error)
    few = sorted(n for n, t in cluster.topics.items()
                 if brokers > 1 and 0 < len(t.partitions) < brokers and not t.internal)
    out: list[F] = []
    if rf1:
        # on one broker no other factor is possible: a fact of the cluster, not a
        # misconfigured topic (the cluster's size is what to change)
        out.append(F("kafka.topic.replication_factor_one",
                     Severity.INFO if brokers == 1 else Severity.WARNING,
                     f"{len(rf1)} topic(s) have replication factor 1"
                     + (" (a one-broker cluster: no other factor is possible)"
                        if brokers == 1 else ""),
                     {"count": len(rf1), "topics": named(rf1), "brokers": brokers},
                     "One broker loss makes these partitions unavailable and can lose data: "
                     "raise the replication factor (a partition reassignment) to 3"
                     + (" after adding brokers." if brokers < 3 else ".")))
    if low:
        out.append(F("kafka.topic.replication_factor_low", Severity.WARNING,
                     f"{len(low)} topic(s) have a replication factor below {min_rf} on a "
                     f"{brokers}-broker cluster",
                     {"count": len(low), "topics": named(low), "minimum": min_rf},
                     f"Reassign these topics' partitions to {min_rf} replicas."))
    if errors:
        out.append(F("kafka.topic.metadata_error", Severity.WARNING,
                     f"{len(errors)} topic(s) returned a metadata error",
                     {"topics": {n: e for n, e in named(errors)}},
                     "Check the topic's leaders and the brokers' logs."))
    if few:
        out.append(F("kafka.topic.partitions_below_brokers", Severity.INFO,
                     f"{len(few)} topic(s) have fewer partitions than the {brokers} brokers",
                     {"count": len(few), "topics": named(few)},
                     "These topics cannot spread their load over every broker."))
    return out


def config_findings(cluster: Cluster, configs: Mapping[str, Mapping[str, str]],
                    retention_min_ms: float) -> list[F]:
    above, equal, one, unclean, short, unbounded, bad_policy = [], [], [], [], [], [], []
    for name, cfg in sorted(configs.items()):
        topic = cluster.topics.get(name)
        rf = topic.replication_factor if topic else 0
        min_isr = _int(cfg.get(MIN_ISR))
        if min_isr is not None and rf:
            row = {"topic": name, "replication_factor": rf, "min_insync_replicas": min_isr}
            if min_isr > rf:
                above.append(row)
            elif min_isr == rf and rf > 1:
                equal.append(row)
            elif min_isr == 1 and rf >= 3:
                one.append(row)
        if str(cfg.get(UNCLEAN, "")).lower() == "true":
            unclean.append(name)
        retention = _int(cfg.get(RETENTION_MS))
        policy = str(cfg.get(CLEANUP, "delete")).replace(" ", "").lower()
        if policy not in CLEANUP_POLICIES:
            bad_policy.append({"topic": name, "cleanup.policy": cfg.get(CLEANUP)})
        if "delete" in policy and retention is not None:
            if 0 <= retention < retention_min_ms:
                short.append({"topic": name, "retention_ms": retention})
            elif retention < 0 and (_int(cfg.get(RETENTION_BYTES)) or -1) < 0:
                unbounded.append(name)
    out: list[F] = []
    if above:
        out.append(F("kafka.topic.min_isr_above_replication_factor", Severity.CRITICAL,
                     f"{len(above)} topic(s) require more in-sync replicas than they have",
                     {"topics": named(above)},
                     "Every acks=all write fails: lower min.insync.replicas below the replication factor."))
    if equal:
        out.append(F("kafka.topic.min_isr_equals_replication_factor", Severity.WARNING,
                     f"{len(equal)} topic(s) have min.insync.replicas equal to the replication factor",
                     {"topics": named(equal)},
                     "acks=all writes fail as soon as one replica's broker is down: use RF - 1."))
    if one:
        out.append(F("kafka.topic.min_isr_one", Severity.WARNING,
                     f"{len(one)} topic(s) have min.insync.replicas=1 with 3 or more replicas",
                     {"topics": named(one)},
                     "An acknowledged write may live on one broker only: set min.insync.replicas=2."))
    if unclean:
        out.append(F("kafka.topic.unclean_leader_election", Severity.WARNING,
                     f"{len(unclean)} topic(s) allow unclean leader election",
                     {"topics": named(unclean)},
                     "An out-of-sync replica may become leader and drop acknowledged writes: "
                     "set unclean.leader.election.enable=false."))
    if short:
        out.append(F("kafka.topic.retention_short", Severity.WARNING,
                     f"{len(short)} topic(s) keep data less than {retention_min_ms / 3.6e6:g} h",
                     {"topics": named(short), "threshold_ms": retention_min_ms},
                     "A consumer down for longer than the retention loses messages."))
    if unbounded:
        out.append(F("kafka.topic.retention_unbounded", Severity.INFO,
                     f"{len(unbounded)} topic(s) delete nothing (no time or size limit)",
                     {"topics": named(unbounded)},
                     "Make sure the disks can hold these topics forever, or set a retention."))
    if bad_policy:
        out.append(F("kafka.topic.cleanup_policy_invalid", Severity.WARNING,
                     f"{len(bad_policy)} topic(s) have an unknown cleanup.policy",
                     {"topics": named(bad_policy)}, "Use delete, compact or compact,delete."))
    return out


def leader_findings(cluster: Cluster, skew_ratio: float, preferred_pct: float) -> list[F]:
    out: list[F] = []
    brokers = sorted(cluster.brokers)
    if len(brokers) < 2:
        return out
    leaders = cluster.leaders_per_broker()
    counts = {b: leaders.get(b, 0) for b in brokers}
    total = sum(counts.values())
    mean = total / len(brokers)
    if total and max(counts.values()) > skew_ratio * mean:
        out.append(F("kafka.topic.leader_skew", Severity.WARNING,
                     "Partition leadership is unevenly spread over the brokers",
                     {"leaders_per_broker": {str(k): v for k, v in counts.items()},
                      "mean": round(mean, 2), "ratio_threshold": skew_ratio},
                     "Run a preferred leader election, then rebalance partitions if it persists."))
    not_preferred = [f"{p.topic}:{p.partition}" for p in cluster.partitions()
                     if p.leader >= 0 and p.preferred_leader is not None
                     and p.leader != p.preferred_leader]
    with_leader = sum(1 for p in cluster.partitions() if p.leader >= 0)
    pct = 100.0 * len(not_preferred) / with_leader if with_leader else 0.0
    if not_preferred and pct > preferred_pct:
        out.append(F("kafka.topic.preferred_leader_imbalance", Severity.WARNING,
                     f"{len(not_preferred)} partition(s) ({pct:.1f}%) are not led by their "
                     "preferred replica",
                     {"count": len(not_preferred), "percent": round(pct, 1),
                      "threshold_percent": preferred_pct, "partitions": named(not_preferred)},
                     "Run kafka-leader-election.sh --election-type PREFERRED, and check "
                     "auto.leader.rebalance.enable."))
    return out


class TopicChecks:
    @category("topic")
    def check_topic(self, run: Run) -> None:
        cluster: Cluster = self._cluster(run)  # type: ignore[attr-defined]
        run.metric("topics", len(cluster.topics))
        run.metric("topic_partitions", sum(len(t.partitions) for t in cluster.topics.values()))
        configs: dict[str, dict[str, str]] = run.data.get("configs", {})
        emit(run, replication_findings(cluster, int(th(run, "min_replication_factor"))))
        # compat difference 4: a broker may answer DescribeConfigs with no entries at all
        missing = sorted(t for t in cluster.topics if not configs.get(t))
        if missing:
            run.finding("kafka.topic.config_unavailable", Severity.INFO,
                        f"{len(missing)} topic(s) returned no configuration to audit",
                        evidence={"count": len(missing), "topics": named(missing),
                                  "errors": run.data.get("config_errors", {})},
                        suggestion=compat.config_unavailable_suggestion(
                            run.data.get("flavor", compat.KAFKA)))
        emit(run, config_findings(cluster, configs, th(run, "retention_ms_min")))
        emit(run, leader_findings(cluster, th(run, "leader_skew_ratio"),
                                  th(run, "preferred_leader_imbalance_pct")))
