"""redis-diagnostics: the builtin Redis plugin (redis-py is imported on connect only).

    ksa diagnose redis 127.0.0.1:6379 [--json] [-c memory ...]
    ksa diagnose redis S1:26379 S2:26379 S3:26379 --mode sentinel -o master_name=mymaster
    ksa diagnose redis NODE:7000 --mode cluster --password-ref env:REDIS_PASSWORD --tls-ca ca.pem

Categories (one module each in checks/): memory (usage vs maxmemory, fragmentation,
evictions and their growth between runs, policy vs usage, MEMORY DOCTOR's rules),
connection (clients vs maxclients, rejections, blocked and idle clients by source),
replication (link, lag per replica in bytes and seconds, backlog vs write rate),
persistence (RDB/AOF status, a save the policy should have made, disk space when local),
performance (ops, hit rate, slow log by command and client, commandstats, LATENCY
DOCTOR's rules), cluster (state, slots, failed or unreachable nodes, named), sentinel
(reachable, CKQUORUM, master agreed on, replicas known). Finding codes are
``redis.<category>.<what>``; thresholds (names and defaults) are in constants.DEFAULTS,
overridable per plugin config and per target.

Target options: ``master_name`` (Sentinel), ``db``, ``sentinel_username``,
``sentinel_password_ref`` (a secret reference). Plugin options: ``socket_timeout``,
``connect_timeout``, ``ping_skip_seconds`` (no PING before the fetch on a connection
that answered this recently; default 1 s, so a health check is never staler).

Actions: slowlog_reset, latency_reset, memory_purge, kill_idle_clients
(min_idle_seconds >= 1), bgsave, bgrewriteaof; dangerous, refused unless allowed by
name: flushall, flushdb, config_set (name, value), shutdown. Cluster: on every master,
or on ``node``.
"""

from __future__ import annotations

from ..builtins import register_builtin
from .plugin import RedisPlugin

register_builtin("redis-diagnostics", RedisPlugin)

__all__ = ["RedisPlugin"]
