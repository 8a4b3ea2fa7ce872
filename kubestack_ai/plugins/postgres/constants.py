"""Lookup tables and default thresholds of the PostgreSQL plugin.

Sources for the defaults (see the project's ANCHORS.md): check_postgres 2.25
(`check_postgres.pl`), the awesome-prometheus-alerts and postgres_mixin rules written for
postgres_exporter, and PgHero (`lib/pghero/methods/*.rb`). Where none of them sets a
number, the line says it is ours.
"""

from __future__ import annotations

PLUGIN_ID = "postgres-diagnostics"
VERSION = "1.0.0"

DEFAULTS: dict[str, float] = {
    # connection: check_postgres backends 90% / 95% of max_connections less the reserved
    "connections_usage_warning_pct": 90,
    "connections_usage_critical_pct": 95,
    "idle_in_transaction_seconds": 60,  # PgHero lists them; the 60 s is its long-query cut
    # performance
    "long_query_seconds": 60,  # PgHero long_running_queries
    "long_transaction_seconds": 120,  # postgres_mixin
    "lock_wait_seconds": 60,  # check_postgres lockwait
    "deadlocks_per_minute": 5,  # awesome-prometheus-alerts
    "rollback_warning_pct": 2,  # awesome-prometheus-alerts
    "rollback_critical_pct": 10,  # postgres_mixin
    "min_transactions_for_ratios": 100,  # ours: a ratio of a handful of transactions says nothing
    "temp_bytes_per_second": 10 * 1024 * 1024,  # ours
    "cache_hit_pct": 98,  # postgres_mixin (PgHero: 99)
    "min_blocks_for_cache_ratio": 10000,  # ours
    "top_statements": 5,
    # replication
    "replication_lag_bytes": 1_000_000_000,  # postgres_mixin
    "replication_lag_seconds": 5,  # PgHero
    "slot_retained_wal_bytes": 1024**3,  # ours: 1 GiB held by an inactive slot
    # maintenance: check_postgres txn_wraparound 1.3 B / 1.4 B; autovac_freeze 90% / 95%
    "xid_age_warning": 1_300_000_000,
    "xid_age_critical": 1_400_000_000,
    "freeze_age_warning_pct": 90,
    "freeze_age_critical_pct": 95,
    "dead_tuples_min": 10000,  # awesome-prometheus-alerts: > 10,000 and >= 10%
    "dead_tuples_pct": 10,
    "analyze_stale_seconds": 86400,  # check_postgres last_analyze warning: 1 day
    "bloat_warning_bytes": 1024**3,  # check_postgres bloat 1 GB / 5 GB wasted
    "bloat_critical_bytes": 5 * 1024**3,
    "sequence_warning_pct": 85,  # check_postgres sequence
    "sequence_critical_pct": 95,
    "prepared_xact_warning_seconds": 30,  # check_postgres prepared_txns critical
    "prepared_xact_critical_seconds": 3600,  # ours
    # schema: PgHero unused indexes (<= 50 scans); "large" is ours
    "unused_index_scans": 50,
    "unused_index_min_bytes": 10 * 1024 * 1024,
    "fk_index_min_rows": 10000,  # ours: a small referencing table is scanned cheaply
    "schema_max_listed": 50,
    # checkpoints: postgres_mixin (timed share < 0.5)
    "checkpoints_requested_pct": 50,
    "min_checkpoints_for_ratio": 3,
    # counters as rates: stored history within this span, else a second reading
    "rate_window_seconds": 900,
    "counter_sample_seconds": 1.0,
}

# Settings read from pg_settings (nothing else is read).
SETTINGS = (
    "max_connections", "superuser_reserved_connections", "reserved_connections",
    "autovacuum", "autovacuum_freeze_max_age", "autovacuum_multixact_freeze_max_age",
    "max_slot_wal_keep_size", "max_wal_size", "checkpoint_timeout", "fsync",
    "full_page_writes", "synchronous_commit", "data_checksums", "archive_mode",
    "archive_command", "password_encryption", "ssl", "wal_level",
    "idle_in_transaction_session_timeout", "statement_timeout", "track_counts",
    "shared_preload_libraries", "server_version_num",
)

# int4/int8/int2 maxima, for sequences feeding a column narrower than the sequence
TYPE_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}

ACTIONS = ("cancel_query", "terminate_backend", "drop_replication_slot", "vacuum_analyze",
           "reindex_concurrently")
# Dropping a slot loses what a standby or a consumer has not yet read; a concurrent
# reindex of a large index takes hours of I/O: both allowed only by name.
DANGEROUS_ACTIONS = ("drop_replication_slot", "reindex_concurrently")
MAX_BACKENDS = 100

# SQLSTATEs: insufficient_privilege; undefined_table / undefined_object / undefined_function
PRIVILEGE_STATES = frozenset({"42501"})
MISSING_STATES = frozenset({"42P01", "42704", "42883"})
NOT_PRELOADED = "55000"  # object_not_in_prerequisite_state: pg_stat_statements not preloaded
AUTH_STATES = frozenset({"28P01", "28000"})

TARGET_OPTIONS: dict[str, dict[str, object]] = {
    "user": {"type": "string", "default": "postgres",
             "description": "the role when the target has no auth.username"},
    "database": {"type": "string", "default": "postgres",
                 "description": "the database whose tables, indexes and sequences are checked"},
    "databases": {"type": "array", "items": {"type": "string"}, "maxItems": 50,
                  "description": "further databases whose schema and tables are checked too "
                                 "(the role needs CONNECT on each)"},
    "sslmode": {"enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
                "description": "libpq sslmode (default: verify-full when tls is set, else prefer)"},
    "passfile": {"type": "string",
                 "description": "a .pgpass as a secret reference (file:/path): its matching "
                                "line gives the password when auth.password is not set"},
}
"""What a target's ``options`` may hold; anything else is refused before connect."""
