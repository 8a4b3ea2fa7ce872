"""kafka-diagnostics: the builtin Kafka plugin (kafka-python is imported on connect).

    ksa diagnose kafka HOST:PORT [HOST:PORT...] [-c broker|consumer|topic] [--json]
        [--user U --password-ref env:NAME --sasl-mechanism SCRAM-SHA-512]
        [--tls --tls-ca CA.pem [--tls-cert C.pem --tls-key K.pem] [--tls-insecure]]
        [-o broker_flavor=kafka|tansu|auto] [-t group_lag_warning=50000 ...]

Categories and their findings (``kafka.<category>.<what>``):

- broker: unreachable, no_controller, controller_unknown, address_unresolvable,
  duplicate_address, missing (replicas on a broker gone from the metadata),
  offline_partitions, below_min_isr, under_replicated_partitions.
- consumer: lag per partition and group (high-water mark - committed, read now, never
  negative, idle groups included) in the metrics; group_rebalancing, group_empty,
  group_dead, group_unreadable, partitions_unassigned, idle_members, assignment_skew,
  lag_high, groups_truncated, and Burrow's statuses group_stop, group_stall,
  group_rewind, group_warn, group_expired, history_truncated (see burrow.py: rings of
  commits carried from run to run in ``metrics["offsets"]``, else a short in-run
  sampling window for lagging groups with members).
- topic: replication_factor_one, replication_factor_low, metadata_error,
  partitions_below_brokers, config_unavailable, min_isr_above_replication_factor,
  min_isr_equals_replication_factor, min_isr_one, unclean_leader_election,
  retention_short, retention_unbounded, cleanup_policy_invalid, leader_skew,
  preferred_leader_imbalance.

Thresholds (target, then plugin config, then constants.DEFAULTS) bound the work too:
max_groups, max_in_flight, max_tracked_partitions, request_timeout_s, lag_samples,
lag_sample_seconds. Actions: describe_group, and reset_offsets_latest (dangerous: the
target's allow_actions or the config's allowed_actions must name it). Where a broker
differs from Apache Kafka: compat.py, and only there.
"""

from __future__ import annotations

from ..builtins import register_builtin
from .plugin import KafkaPlugin

register_builtin("kafka-diagnostics", KafkaPlugin)

__all__ = ["KafkaPlugin"]
