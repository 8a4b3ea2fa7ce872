"""The builtin plugins as ``ksa plugin list`` shows them, read without importing them.

Listing the builtins by loading them costs a start-up the framework (pydantic, the
models) and every builtin's checks; a listing that finds no external plugin prints
this table instead. The plugins' code stays the one source of truth: each entry is
what the loaded plugin declares (``info()`` as JSON, ``middleware_type()``,
``categories()``), and ``tests/framework/test_catalogue.py`` fails, printing the entry
to paste here, when a builtin changes and this table does not. Plain data: importing
this module imports nothing.
"""

from __future__ import annotations

from typing import Any, Final

BUILTINS: Final[dict[str, dict[str, Any]]] = {
    "kafka-diagnostics": {
        "info": {
            "id": "kafka-diagnostics",
            "name": "Kafka diagnostics",
            "version": "1.0.0",
            "type": "middleware",
            "description": "Brokers, ISR and offline partitions; consumer groups' lag, "
                           "assignment and Burrow status; topic configuration and leadership.",
            "capabilities": ["health-check", "metrics", "diagnose", "lag-monitor"],
            "author": "KubeStack AI",
            "actions": ["describe_group", "reset_offsets_latest"],
            "dangerous_actions": ["reset_offsets_latest"],
            "api_version": "1.0",
        },
        "middleware_type": "kafka",
        "categories": ["broker", "consumer", "topic"],
    },
    "mysql-diagnostics": {
        "info": {
            "id": "mysql-diagnostics",
            "name": "MySQL / MariaDB diagnostics",
            "version": "1.0.0",
            "type": "middleware",
            "description": "Replication, statement performance, connections, InnoDB, "
                           "durability, accounts and schema of MySQL 5.7/8.x and MariaDB "
                           "10.x/11.x, with the exact setting, GRANT or statement to change.",
            "capabilities": ["health-check", "metrics", "diagnose", "slow-query"],
            "author": "KubeStack AI",
            "actions": ["kill_long_queries"],
            "dangerous_actions": ["kill_long_queries"],
            "api_version": "1.0",
        },
        "middleware_type": "mysql",
        "categories": ["replication", "performance", "connection", "innodb", "durability",
                       "security", "schema"],
    },
    "postgres-diagnostics": {
        "info": {
            "id": "postgres-diagnostics",
            "name": "PostgreSQL diagnostics",
            "version": "1.0.0",
            "type": "middleware",
            "description": "Connections, long queries and lock chains, replication and slots, "
                           "wraparound and vacuum, indexes and schema, durability, security and "
                           "checkpoints of PostgreSQL 12-17, each with the statement to run.",
            "capabilities": ["health-check", "metrics", "diagnose", "execute"],
            "author": "KubeStack AI",
            "actions": ["cancel_query", "terminate_backend", "drop_replication_slot",
                        "vacuum_analyze", "reindex_concurrently"],
            "dangerous_actions": ["drop_replication_slot", "reindex_concurrently"],
            "api_version": "1.0",
        },
        "middleware_type": "postgres",
        "categories": ["connection", "performance", "replication", "maintenance", "schema",
                       "durability", "security", "checkpoints"],
    },
    "redis-diagnostics": {
        "info": {
            "id": "redis-diagnostics",
            "name": "Redis diagnostics",
            "version": "1.0.0",
            "type": "middleware",
            "description": "Memory, connections, replication, persistence and performance of "
                           "Redis (standalone, Sentinel, Cluster), with MEMORY DOCTOR and "
                           "LATENCY DOCTOR rules.",
            "capabilities": ["health-check", "metrics", "diagnose", "execute"],
            "author": "KubeStack AI",
            "actions": ["slowlog_reset", "latency_reset", "memory_purge", "kill_idle_clients",
                        "bgsave", "bgrewriteaof", "flushall", "flushdb", "config_set",
                        "shutdown"],
            "dangerous_actions": ["flushall", "flushdb", "config_set", "shutdown"],
            "api_version": "1.0",
        },
        "middleware_type": "redis",
        "categories": ["memory", "connection", "replication", "persistence", "performance",
                       "cluster", "sentinel"],
    },
    "tcp-diagnostics": {
        "info": {
            "id": "tcp-diagnostics",
            "name": "TCP endpoint diagnostics",
            "version": "1.0.0",
            "type": "middleware",
            "description": "Reachability and connect latency of any TCP service.",
            "capabilities": ["health-check", "diagnose"],
            "author": "KubeStack AI",
            "actions": [],
            "dangerous_actions": [],
            "api_version": "1.0",
        },
        "middleware_type": "tcp",
        "categories": ["reachability", "latency"],
    },
}
"""Plugin id -> ``info`` (PluginInfo as JSON), ``middleware_type``, ``categories``; in
the order ``builtin_ids()`` gives (sorted by id)."""
