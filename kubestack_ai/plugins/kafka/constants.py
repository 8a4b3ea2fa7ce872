"""Lookup tables and default thresholds of kafka-diagnostics (thresholds are overridable
per plugin config and per target, by these names)."""

from __future__ import annotations

from kubestack_ai.plugins.keymetrics import KeyMetric as K

PLUGIN_ID = "kafka-diagnostics"
VERSION = "1.0.0"
CLIENT_ID = "ksa-kafka-diagnostics"

DEFAULTS: dict[str, float] = {
    # Burrow (linkedin/Burrow core/internal/evaluator/caching.go and its storage module)
    "burrow_allowed_lag": 0,        # Burrow: lag 0 is "caught up" (rule 1, isLagAlwaysNotZero)
    "burrow_window": 10,            # commits kept per partition (Burrow's intervals, default 10)
    "burrow_min_entries": 3,        # a group with members and fewer commits than this is
                                    # sampled in-run before it is judged (3 is the fewest that
                                    # can show a trend); an Empty group is judged at once
    "burrow_commit_interval_seconds": 5.0,  # the consumers' commit interval (Kafka's
                                    # auto.commit.interval.ms): a group with members re-commits
                                    # this often, and a commit at or past the high-water mark
                                    # of one interval before the reading is caught up (lag 0)
    "expire_group_seconds": 604_800,  # Burrow's expire-group: 7 days without a commit
    # in-run sampling window, for lagging groups with members and no ring yet (ours:
    # three readings in a second give two commit intervals to compare)
    "lag_samples": 3,
    "lag_sample_seconds": 1.0,      # span of the whole in-run window
    # lag thresholds (messages) for a group's total lag: Burrow has none (it judges the
    # trend only); these follow the seed's example thresholds and are meant to be set per
    # group's traffic. The time behind (lag / consume rate) is reported beside them.
    "group_lag_warning": 10_000,
    "group_lag_critical": 1_000_000,
    # assignment (ours: a member with twice the partitions of another)
    "assignment_skew_ratio": 2.0,   # max/min partitions per member
    # topics
    "preferred_leader_imbalance_pct": 10.0,  # Kafka's leader.imbalance.per.broker.percentage
    "leader_skew_ratio": 1.5,       # busiest broker's leaders / mean leaders per broker (ours)
    "min_replication_factor": 3,    # Kafka's documented production default (and
                                    # offsets.topic.replication.factor), on clusters with
                                    # at least this many brokers
    "retention_ms_min": 3_600_000,  # retention below 1 h loses data on a short outage (ours)
    # bounded work (kafka_exporter #13 and PR #506: bound and parallelise the reads)
    "max_groups": 2000,
    "max_in_flight": 32,            # requests in flight over all brokers
    "max_tracked_partitions": 20_000,  # partitions whose commit rings are stored for the
                                       # next run (lagging groups first)
    "request_timeout_s": 10.0,
}

# Group states (DescribeGroups), as Kafka names them.
STATE_STABLE = "Stable"
STATE_EMPTY = "Empty"
STATE_DEAD = "Dead"
REBALANCING_STATES = frozenset({"PreparingRebalance", "CompletingRebalance", "AwaitingSync"})

# Burrow statuses; STOP, STALL and REWIND are Burrow's ERR.
OK, WARN, STOP, STALL, REWIND = "OK", "WARN", "STOP", "STALL", "REWIND"
ERR_STATUSES = frozenset({STOP, STALL, REWIND})
STATUS_RANK = {OK: 0, WARN: 1, STALL: 2, REWIND: 3, STOP: 4}

# Topic configuration keys audited.
MIN_ISR = "min.insync.replicas"
UNCLEAN = "unclean.leader.election.enable"
RETENTION_MS = "retention.ms"
RETENTION_BYTES = "retention.bytes"
CLEANUP = "cleanup.policy"
CONFIG_KEYS = (MIN_ISR, UNCLEAN, RETENTION_MS, RETENTION_BYTES, CLEANUP)
CLEANUP_POLICIES = frozenset({"delete", "compact", "compact,delete", "delete,compact"})

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# metrics key holding the compact offsets snapshot read back by the next run
OFFSETS_METRIC = "offsets"
OFFSETS_FORMAT = 2

# Actions: the specs live here, not in actions.py, so that `ksa plugin info` lists them
# without importing kafka-python.
_GROUP = {"type": "string", "minLength": 1, "description": "the consumer group id"}
_DRY = {"type": "boolean", "description": "say what would be done, do nothing"}
ACTION_SPECS: dict[str, dict[str, object]] = {
    "describe_group": {
        "description": "state, members, committed offsets and lag of one group (read-only: "
                       "a dry run is the same as a run)",
        "params": {"group": _GROUP, "dry_run": _DRY}, "required": ("group",)},
    "reset_offsets_latest": {
        "description": "commit each partition's high-water mark as the group's offset (the "
                       "group skips everything not yet consumed); only for a group with no "
                       "active members",
        "params": {"group": _GROUP, "dry_run": _DRY,
                   "topics": {"type": "array", "items": {"type": "string"},
                              "description": "only these topics (default: every topic the "
                                             "group has committed offsets for)"}},
        "required": ("group",)},
}

TARGET_OPTIONS: dict[str, dict[str, object]] = {
    "broker_flavor": {"enum": ["auto", "kafka", "tansu"], "default": "auto",
                      "description": "which broker implementation (auto: detected)"},
}
"""What a target's ``options`` may hold; anything else is refused before connect."""


KEY_METRICS: tuple[K, ...] = (
    K("group_lag", "Consumer lag per group", "messages"),
    K("group_time_behind_s", "Time behind per group", "s"),
    K("under_replicated_partitions", "Under-replicated partitions", "partitions"),
    K("offline_partitions", "Offline partitions", "partitions"),
)
"""What the target page charts over time (plugins/keymetrics.py)."""
