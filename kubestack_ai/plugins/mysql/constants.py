"""Lookup tables and default thresholds of the MySQL plugin.

Sources for the defaults: MySQLTuner-perl 2.9.1 (`mysqltuner.pl`), the mysqld_exporter
mixin's alerts and Datadog's mysql check (see the project's ANCHORS.md).
"""

from __future__ import annotations

from kubestack_ai.plugins.keymetrics import KeyMetric as K

PLUGIN_ID = "mysql-diagnostics"
VERSION = "1.0.0"

DEFAULTS: dict[str, float] = {
    # replication (Datadog: a stopped thread; mysqld_exporter: lag > 30 s and growing)
    "replication_lag_warning_s": 30,
    "replication_lag_critical_s": 300,
    "relay_log_space_warning_mb": 10240,
    # connection (MySQLTuner)
    "connections_usage_warning_pct": 85,
    "connections_usage_critical_pct": 95,
    "max_used_connections_pct": 85,
    "aborted_connects_pct": 3,
    "aborted_clients_pct": 3,
    "thread_cache_hit_pct": 50,
    "min_connections_for_ratios": 100,
    "long_query_seconds": 60,
    "long_trx_seconds": 3600,
    # a transaction others wait on is long much sooner: below innodb_lock_wait_timeout's
    # default 50 s, so it is named before its waiters start failing with error 1205
    "blocking_trx_seconds": 30,
    "threads_running": 25,  # pt-stalk's default trigger
    # performance (MySQLTuner)
    "slow_queries_pct": 5,
    "long_query_time_max_s": 10,
    "tmp_disk_tables_pct": 25,
    "sort_merge_passes_pct": 10,
    "joins_without_index_per_day": 250,
    "joins_without_index_min": 25,  # joins in the window before a per-day rate is judged
    "table_cache_hit_pct": 20,
    "open_files_pct": 85,
    "table_locks_immediate_pct": 95,
    "min_questions_for_ratios": 1000,
    "top_statements": 10,
    "full_scan_min_rows_per_call": 1000,
    "rows_examined_per_sent": 100,
    "rows_examined_min": 100000,
    "slow_statement_avg_ms": 1000,
    "query_p99_ms": 1000,
    # a statement digest warns only when it is the workload, not a one-off (a nightly
    # dump, one bulk INSERT ... SELECT): enough calls, and a real cost (rows examined per
    # second over the time the digest has been counted, or a share of all statements' time)
    "statement_min_calls": 10,
    "statement_rows_examined_per_s": 1000,
    "statement_time_share_pct": 20,
    # innodb (MySQLTuner, mysqld_exporter)
    "buffer_pool_read_hit_pct": 90,
    "buffer_pool_min_read_requests": 10000,
    "history_list_length": 100000,
    "log_waits_per_15min": 10,
    "row_lock_time_avg_ms": 1000,
    "lock_wait_seconds": 10,
    "deadlock_recent_seconds": 3600,
    # counters judged as rates: over stored history of at most this span (mysqld_exporter's
    # alerts take rates over 15 min), else a second reading this long after the first
    # (only when a counter is non-zero)
    "rate_window_seconds": 900,
    "counter_sample_seconds": 1.0,
    # schema: at most this many tables / indexes named in one finding
    "schema_max_listed": 50,
}

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")

# Only these variables are read (SHOW GLOBAL VARIABLES WHERE ... IN (...)).
VARIABLES = (
    "version", "version_comment", "performance_schema", "read_only", "super_read_only",
    "max_connections", "thread_cache_size", "slow_query_log", "long_query_time",
    "open_files_limit", "table_open_cache", "innodb_buffer_pool_size",
    "innodb_log_buffer_size", "innodb_log_file_size", "innodb_redo_log_capacity",
    "query_response_time_stats", "log_bin", "server_id", "innodb_deadlock_detect",
    "innodb_print_all_deadlocks", "max_execution_time", "max_statement_time",
    "performance_schema_digests_size", "tmp_table_size", "max_heap_table_size",
    "sort_buffer_size",
    # durability (pt-variable-advisor's rules)
    "sync_binlog", "innodb_flush_log_at_trx_commit", "innodb_doublewrite", "expire_logs_days",
    "binlog_expire_logs_seconds", "binlog_expire_logs_auto_purge", "binlog_format",
    # security
    "skip_name_resolve", "skip_networking", "hostname",
)

# Processlist commands that are not client queries (replication, daemons, idle).
NOT_QUERIES = ("Sleep", "Daemon", "Binlog Dump", "Binlog Dump GTID", "Connect",
               "Slave_IO", "Slave_SQL", "Slave_worker", "Killed")
SYSTEM_USERS = ("system user", "event_scheduler")

PERCENTILES = (50, 95, 99)

ACTIONS = ("kill_long_queries",)
# Killing queries changes what clients see: allowed only by name (target allow_actions
# or the plugin config's allowed_actions).
DANGEROUS_ACTIONS = ("kill_long_queries",)
KILL_MIN_SECONDS = 1
KILL_MAX_QUERIES = 100

# Privilege/availability error numbers from the server.
ER_DBACCESS_DENIED = 1044
ER_ACCESS_DENIED = 1045
ER_TABLEACCESS_DENIED = 1142
ER_COLUMNACCESS_DENIED = 1143
ER_SPECIFIC_ACCESS_DENIED = 1227
ER_UNKNOWN_TABLE = 1109
ER_NO_SUCH_TABLE = 1146
ER_HOST_NOT_PRIVILEGED = 1130
PRIVILEGE_ERRORS = frozenset({ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED,
                              ER_COLUMNACCESS_DENIED, ER_SPECIFIC_ACCESS_DENIED})
MISSING_ERRORS = frozenset({ER_UNKNOWN_TABLE, ER_NO_SUCH_TABLE, 1193, 1064})
AUTH_ERRORS = frozenset({ER_ACCESS_DENIED, ER_HOST_NOT_PRIVILEGED, 1251, 1698, 1862})

TARGET_OPTIONS: dict[str, dict[str, object]] = {
    "user": {"type": "string", "default": "root",
             "description": "the user when the target has no auth.username"},
    "database": {"type": "string", "description": "the default schema"},
    "innodb_data_size": {"enum": ["tablespaces", "tables", False], "default": "tablespaces",
                         "description": "how the InnoDB data size is measured (tables: exact, "
                                        "opens every table; false: not measured)"},
}
"""What a target's ``options`` may hold; anything else is refused before connect."""


KEY_METRICS: tuple[K, ...] = (
    K("connection.threads_connected", "Connections", "connections"),
    K("connection.usage_pct", "Connections of max_connections", "%"),
    K("performance.questions", "Queries", "/s", rate=True),
    K("replication.seconds_behind", "Replication delay", "s"),
    K("innodb.buffer_pool_used_pct", "Buffer pool used", "%"),
    K("innodb.buffer_pool_read_hit_pct", "Buffer pool read hits", "%"),
)
"""What the target page charts over time (plugins/keymetrics.py)."""
