"""Actions ``execute`` runs. The sandbox has checked the whitelist and the dangerous list
before any of these is called; each one names what it did in its result (the audit
hook records it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..logcontext import get_logger
from .constants import IGNORED_CLIENT_FLAGS, KILL_IDLE_MIN_SECONDS, SELF_CLIENT_NAME

log = get_logger(__name__)

Action = Callable[[Any, Mapping[str, Any]], Any]


def _int_param(params: Mapping[str, Any], name: str, minimum: int) -> int:
    if name not in params:
        raise ConfigError(f"action parameter {name!r} is required")
    try:
        value = int(params[name])
    except (TypeError, ValueError):
        raise ConfigError(f"action parameter {name!r} must be an integer, "
                          f"got {params[name]!r}") from None
    if value < minimum:
        raise ConfigError(f"action parameter {name!r} must be >= {minimum}, got {value}")
    return value


def slowlog_reset(r: Any, params: Mapping[str, Any]) -> Any:
    before = r.slowlog_len()
    r.slowlog_reset()
    return {"cleared_entries": before}


def latency_reset(r: Any, params: Mapping[str, Any]) -> Any:
    return {"reset_events": r.execute_command("LATENCY RESET")}


def memory_purge(r: Any, params: Mapping[str, Any]) -> Any:
    before = r.info("memory")
    r.memory_purge()
    after = r.info("memory")
    return {"used_memory_rss_before": before["used_memory_rss"],
            "used_memory_rss_after": after["used_memory_rss"]}


def kill_idle_clients(r: Any, params: Mapping[str, Any]) -> Any:
    """Kill normal clients idle for min_idle_seconds or more (never replicas, pub/sub,
    blocked clients, or our own connections)."""
    min_idle = _int_param(params, "min_idle_seconds", KILL_IDLE_MIN_SECONDS)
    victims = [c for c in r.client_list(_type="normal")
               if int(c.get("idle", 0)) >= min_idle and c.get("name") != SELF_CLIENT_NAME
               and not IGNORED_CLIENT_FLAGS.intersection(c.get("flags", ""))]
    if not victims:
        return {"killed": 0, "min_idle_seconds": min_idle, "by_source": {}}
    pipe = r.pipeline(transaction=False)
    for c in victims:
        pipe.execute_command("CLIENT KILL", "ID", c["id"], "SKIPME", "yes")
    replies = pipe.execute(raise_on_error=False)
    killed = [c for c, n in zip(victims, replies, strict=True) if not isinstance(n, Exception) and int(n)]
    by_source = Counter(c.get("addr", "?").rpartition(":")[0] for c in killed)
    log.info("kill_idle_clients: killed %d clients idle >= %ds", len(killed), min_idle)
    return {"killed": len(killed), "min_idle_seconds": min_idle, "by_source": dict(by_source)}


def bgsave(r: Any, params: Mapping[str, Any]) -> Any:
    return {"started": bool(r.bgsave(schedule=True)), "last_save": int(r.lastsave().timestamp())}


def bgrewriteaof(r: Any, params: Mapping[str, Any]) -> Any:
    return {"started": bool(r.bgrewriteaof())}


def flushall(r: Any, params: Mapping[str, Any]) -> Any:
    keys = r.dbsize()
    r.flushall(asynchronous=bool(params.get("async", True)))
    return {"flushed": "all", "keys_in_db_before": keys}


def flushdb(r: Any, params: Mapping[str, Any]) -> Any:
    keys = r.dbsize()
    r.flushdb(asynchronous=bool(params.get("async", True)))
    return {"flushed": "db", "keys_before": keys}


def config_set(r: Any, params: Mapping[str, Any]) -> Any:
    name, value = params.get("name"), params.get("value")
    if not name or value is None:
        raise ConfigError("config_set needs the parameters 'name' and 'value'")
    old = r.config_get(name).get(name)
    r.config_set(name, value)
    return {"name": name, "old": old, "new": r.config_get(name).get(name)}


def shutdown(r: Any, params: Mapping[str, Any]) -> Any:
    import redis.exceptions as rx

    try:
        r.shutdown(save=bool(params.get("save", False)), nosave=not params.get("save", False))
    except rx.ConnectionError:
        pass  # the server closed the connection: that is the success
    return {"shutdown": True}


ACTIONS: dict[str, Action] = {
    "slowlog_reset": slowlog_reset, "latency_reset": latency_reset,
    "memory_purge": memory_purge, "kill_idle_clients": kill_idle_clients, "bgsave": bgsave,
    "bgrewriteaof": bgrewriteaof, "flushall": flushall, "flushdb": flushdb,
    "config_set": config_set, "shutdown": shutdown,
}
