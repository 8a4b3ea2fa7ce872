"""Lookup tables and default thresholds of redis-diagnostics.

Sources of the defaults: the seed (section 4.1: memory > 80 %, fragmentation < 1 or
> 1.5), Redis's own MEMORY DOCTOR (``src/object.c``) and LATENCY DOCTOR
(``src/latency.c``), redis_exporter's mixin and Datadog's redisdb check (see
shared/ANCHORS.md). Every threshold can be overridden per plugin config and per target
by the name used here.
"""

from __future__ import annotations

from kubestack_ai.plugins.keymetrics import KeyMetric as K

MB = 1024 * 1024

DEFAULTS: dict[str, float] = {
    # memory (seed)
    "memory_usage_pct_warning": 80.0,
    "memory_usage_pct_critical": 95.0,
    # MEMORY DOCTOR's 1.4 (src/object.c), not the seed's 1.5: one number across the tools
    # operators compare us with; the 10 MB waste guard (doctor_bytes_min) still applies
    "fragmentation_ratio_max": 1.4,
    "fragmentation_ratio_min": 1.0,
    "swap_min_bytes": 10 * MB,  # MEMORY DOCTOR judges no ratio below 10 MB of RSS/used
    # a box "that can fill": no maxmemory and used memory above this share of the host
    "unbounded_memory_pct_warning": 50.0,
    "system_memory_pct_critical": 90.0,  # redis_exporter: used memory > 90 % of system memory
    # MEMORY DOCTOR
    "doctor_min_bytes": 5 * MB,  # "nothing diagnosed below 5 MB allocated"
    "doctor_bytes_min": 10 * MB,  # every ratio rule also needs > 10 MB of waste
    "peak_ratio_max": 1.5,
    "allocator_frag_ratio_max": 1.1,
    "allocator_rss_ratio_max": 1.1,
    "rss_overhead_ratio_max": 1.1,
    "client_buffer_avg_bytes_max": 200 * 1024,
    "replica_buffers_bytes_max": 10 * MB,
    "cached_scripts_max": 1000,
    # connection
    "clients_pct_warning": 80.0,
    "clients_pct_critical": 95.0,
    "blocked_clients_warning": 100,
    "idle_seconds": 300,
    "idle_clients_warning": 100,
    "source_share_pct_warning": 50.0,  # one address holding this share of maxclients
    # replication
    "repl_lag_bytes_warning": 1 * MB,
    "repl_ack_seconds_warning": 10,
    "master_io_seconds_warning": 30,
    "backlog_seconds_min": 60,  # the backlog should hold at least this much writing
    # persistence
    "save_age_factor": 2.0,  # last save older than factor * the longest save interval
    "disk_free_factor": 1.2,  # a snapshot needs about used_memory bytes of free disk
    # performance
    "hit_rate_min": 0.8,
    "hit_rate_min_lookups": 1000,
    "slowlog_entries": 128,  # Datadog: at most 128 slow log entries a run
    "slowlog_window_seconds": 3600,
    "slowlog_count_warning": 10,
    "slowlog_ms_warning": 100.0,
    "usec_per_call_warning": 10000.0,  # a command averaging > 10 ms a call
    "command_min_calls": 100,
    "fork_rate_gb_terrible": 10.0,  # LATENCY DOCTOR: < 10 GB/s terrible, < 25 poor
    "fork_rate_gb_poor": 25.0,
    "fork_usec_min": 10000,  # judge the fork rate only past a 10 ms fork (or a fork event)
    "latency_event_ms_warning": 100.0,
    "aof_latency_events_warning": 3,  # AOF latency events in the window before a warning
    # counters since start, judged as rates (rates.py)
    "rate_window_seconds": 900,  # mysqld_exporter's alerts: rate over 15 min
    "rate_sample_seconds": 1.0,  # in-run second reading when history has no window
    # expired keys not reclaimed (beyond the peers)
    "expired_stale_pct_warning": 25.0,  # activeExpireCycle's own "stale" target is 10 %
    "expires_share_min": 0.05,  # judge reclaim only when >= 5 % of the keys have a TTL
    # big keys: redis-cli --memkeys spread over runs (keyscan.py): a resumed SCAN of at
    # most this many keys / ms a run; a keyspace this small is walked whole every run
    "bigkeys_scan_keys": 2000,
    "bigkeys_scan_ms": 200,
    # without history (a one-off diagnosis): a keyspace up to this size is walked whole
    # (~0.5 s per 10,000 keys on loopback), within a quarter of the time left
    "bigkeys_full_scan_keys": 50_000,
    "bigkeys_bytes_warning": 10 * MB,
    "bigkeys_elements_warning": 1_000_000,
    "top_n": 5,
}

CONFIG_KEYS: tuple[str, ...] = (
    "save", "appendfsync", "slowlog-log-slower-than", "slowlog-max-len",
    "latency-monitor-threshold", "dir", "hz", "activedefrag", "active-expire-effort",
    "maxclients",
)
"""The settings the checks read (the rest comes from INFO); one CONFIG GET (Redis >= 7)."""

COUNTER_METRICS: tuple[str, ...] = (
    "evicted_keys", "expired_keys", "rejected_connections", "total_connections_received",
    "total_commands_processed", "keyspace_hits", "keyspace_misses", "master_repl_offset",
    "sync_full", "sync_partial_ok", "sync_partial_err", "total_net_input_bytes",
    "total_net_output_bytes", "aof_delayed_fsync", "total_error_replies",
    "total_writes_processed",
)
"""INFO counters kept in run.metrics so that history can compare runs."""

RATE_COUNTERS: tuple[str, ...] = ("evicted_keys", "rejected_connections", "aof_delayed_fsync")
"""Counters judged as rates (plus every ``errorstat_<PREFIX>``): a lifetime total alone
never warns."""

ERROR_ADVICE: dict[str, str] = {
    "OOM": "Writes refused at maxmemory: raise maxmemory, cut the data set, or choose an "
           "eviction policy.",
    "MISCONF": "Writes refused since a snapshot failed (stop-writes-on-bgsave-error): fix "
               "the save (disk, permissions, fork) and read the log.",
    "NOAUTH": "Clients send commands without authenticating: fix their configuration.",
    "WRONGPASS": "Clients authenticate with a wrong password: rotate their secret.",
    "NOPERM": "Clients run commands their ACL user lacks: grant them or fix the client.",
    "READONLY": "Clients write to a replica: point them at the master.",
    "LOADING": "Commands refused while the data set loads: wait, or stagger restarts.",
    "BUSY": "A script runs too long: SCRIPT KILL, then fix the script.",
    "MASTERDOWN": "The replica lost its master and replica-serve-stale-data is no.",
    "EXECABORT": "Transactions aborted on a queued error: fix the client's MULTI blocks.",
    "CROSSSLOT": "Multi-key commands span slots: use hash tags.",
    "MOVED": "Clients not cluster-aware: use a cluster client.",
}
"""What to do about refused commands, by INFO errorstats prefix."""

WARNED_ERRORS: frozenset[str] = frozenset({"OOM", "MISCONF", "NOAUTH", "WRONGPASS", "NOPERM",
                                           "READONLY", "LOADING", "BUSY", "MASTERDOWN"})
"""Error prefixes that mean the server refused work (a WARNING when moving); the rest
(ERR, WRONGTYPE...) are usually client bugs: INFO."""

SUMMED_METRICS: frozenset[str] = frozenset(COUNTER_METRICS) - {"master_repl_offset"} | {
    "used_memory", "connected_clients", "blocked_clients", "instantaneous_ops_per_sec",
    "idle_clients", "keys", "slowlog_recent",
}
"""Per-node metrics that a cluster's total adds up."""

IGNORED_CLIENT_FLAGS = frozenset("SMPb")
"""Client flags (replica, master, pub/sub, blocked) that are idle by design."""

SELF_CLIENT_NAME = "ksa-diagnostics"

NODE_TIMEOUT = 2.0
"""Default socket time-out per node and sentinel (plugin option ``socket_timeout``).
A healthy server answers the whole pipelined fetch in milliseconds (INFO + SLOWLOG GET
128 + CLIENT LIST: ~0.4 ms on loopback); redis-cli's own default is no time-out and
Datadog's redisdb uses 5 s for one server. 2 s leaves room for a loaded server over a
WAN while a hung node costs at most this, once, since all are asked at once."""

ACL_NEEDED: dict[str, str] = {
    "config": "+config|get", "slowlog": "+slowlog", "clients": "+client|list",
    "latency": "+latency", "cluster_info": "+cluster|info", "cluster_nodes": "+cluster|nodes",
}

LATENCY_ADVICE: dict[str, str] = {
    "command": "Slow commands: read the slow log; avoid O(N) commands (KEYS, SMEMBERS, "
               "HGETALL on big keys) on the hot path.",
    "fast-command": "O(1) commands are slow: the host is starved (CPU, swap, noisy neighbour).",
    "fork": "Forks are slow: use a host with faster forks, disable transparent huge pages, "
            "or lower the persistence frequency.",
    "expire-cycle": "Expire cycles are slow: many keys expire at once; spread TTLs and check hz.",
    "eviction-cycle": "Eviction cycles are slow: raise maxmemory or lower the write rate.",
    "eviction-del": "Deleting evicted keys is slow: enable lazyfree-lazy-eviction.",
    "aof-fsync-always": "appendfsync always waits on the disk: use everysec or a faster disk.",
    "aof-write": "AOF writes are slow: check the disk and other I/O on it.",
    "aof-write-pending-fsync": "AOF writes wait for fsync: faster disk or no-appendfsync-on-rewrite.",
    "aof-write-active-child": "AOF writes slow while a child saves: no-appendfsync-on-rewrite yes.",
    "aof-write-alone": "AOF writes are slow: check the disk.",
    "aof-rewrite-diff-write": "The AOF rewrite is slow to finish: check the disk.",
    "aof-rename": "The AOF rename is slow: the filesystem is slow to unlink big files.",
    "active-defrag-cycle": "Active defragmentation cycles are slow: lower active-defrag-cycle-max.",
}

ACTIONS: tuple[str, ...] = (
    "slowlog_reset", "latency_reset", "memory_purge", "kill_idle_clients", "bgsave",
    "bgrewriteaof", "flushall", "flushdb", "config_set", "shutdown",
)
DANGEROUS_ACTIONS: tuple[str, ...] = ("flushall", "flushdb", "config_set", "shutdown")
"""Destroy data, change configuration or stop the server: allowed only by name."""

KILL_IDLE_MIN_SECONDS = 1
"""kill_idle_clients refuses 0: every client between two commands would be cut."""

TARGET_OPTIONS: dict[str, dict[str, object]] = {
    "db": {"type": "integer", "minimum": 0, "default": 0,
           "description": "the database to SELECT (standalone and Sentinel's master)"},
    "master_name": {"type": "string", "minLength": 1,
                    "description": "Sentinel mode: the master the sentinels name (required)"},
    "sentinel_username": {"type": "string", "description": "the sentinels' own ACL user"},
    "sentinel_password_ref": {"type": "string", "pattern": "^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$",
                              "description": "the sentinels' password, as a secret reference"},
}
"""What a target's ``options`` may hold; anything else is refused before connect."""


KEY_METRICS: tuple[K, ...] = (
    K("used_memory", "Memory used", "bytes"),
    K("mem_fragmentation_ratio", "Fragmentation (RSS / used)", "ratio"),
    K("connected_clients", "Connected clients", "connections"),
    K("total_commands_processed", "Commands", "/s", rate=True),
    K("hit_rate", "Keyspace hit rate", "ratio"),
    K("replica_lag_bytes", "Replication offset lag", "bytes"),
)
"""What the target page charts over time (plugins/keymetrics.py)."""
