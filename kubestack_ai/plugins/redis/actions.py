"""Actions ``execute`` runs. The framework has checked the whitelist, the dangerous list
and the parameters against :data:`SPECS` before any of these is called; each one names
what it did in its result (the audit log records it). With ``dry_run`` each one says
what it would do, from read-only commands, and changes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..execution import ActionSpec
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


def _dry(params: Mapping[str, Any]) -> bool:
    return bool(params.get("dry_run"))


def slowlog_reset(r: Any, params: Mapping[str, Any]) -> Any:
    before = r.slowlog_len()
    if _dry(params):
        return {"dry_run": True, "would_clear_entries": before}
    r.slowlog_reset()
    return {"cleared_entries": before}


def latency_reset(r: Any, params: Mapping[str, Any]) -> Any:
    if _dry(params):
        events = [str(e[0], "utf-8", "replace") if isinstance(e[0], bytes) else str(e[0])
                  for e in r.execute_command("LATENCY LATEST")]
        return {"dry_run": True, "would_reset_events": sorted(events)}
    return {"reset_events": r.execute_command("LATENCY RESET")}


def memory_purge(r: Any, params: Mapping[str, Any]) -> Any:
    before = r.info("memory")
    if _dry(params):
        return {"dry_run": True, "would_purge": True,
                "used_memory_rss": before["used_memory_rss"],
                "allocator_frag_bytes": before.get("allocator_frag_bytes")}
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
    if _dry(params):
        return {"dry_run": True, "min_idle_seconds": min_idle,
                "would_kill": [{"id": int(c["id"]), "addr": c.get("addr", "?"),
                                "name": c.get("name", ""), "idle": int(c.get("idle", 0)),
                                "cmd": c.get("cmd", "")} for c in victims]}
    if not victims:
        return {"killed": 0, "min_idle_seconds": min_idle, "by_source": {}}
    pipe = r.pipeline(transaction=False)
    for c in victims:
        pipe.execute_command("CLIENT KILL", "ID", c["id"], "SKIPME", "yes")
    replies = pipe.execute(raise_on_error=False)
    killed = [c for c, n in zip(victims, replies, strict=True) if not isinstance(n, Exception) and int(n)]
    by_source = Counter(c.get("addr", "?").rpartition(":")[0] for c in killed)
    log.info("kill_idle_clients: killed %d clients idle >= %ds", len(killed), min_idle)
    return {"killed": len(killed), "min_idle_seconds": min_idle, "by_source": dict(by_source),
            "ids": [int(c["id"]) for c in killed]}


def _persistence_state(r: Any) -> dict[str, Any]:
    p = r.info("persistence")
    return {k: p.get(k) for k in ("rdb_bgsave_in_progress", "aof_rewrite_in_progress",
                                  "aof_enabled", "rdb_last_save_time")}


def bgsave(r: Any, params: Mapping[str, Any]) -> Any:
    if _dry(params):
        return {"dry_run": True, "would_start": "BGSAVE SCHEDULE", **_persistence_state(r)}
    return {"started": bool(r.bgsave(schedule=True)), "last_save": int(r.lastsave().timestamp())}


def bgrewriteaof(r: Any, params: Mapping[str, Any]) -> Any:
    if _dry(params):
        return {"dry_run": True, "would_start": "BGREWRITEAOF", **_persistence_state(r)}
    return {"started": bool(r.bgrewriteaof())}


def flushall(r: Any, params: Mapping[str, Any]) -> Any:
    keys = r.dbsize()
    if _dry(params):
        per_db = {k: v.get("keys") for k, v in r.info("keyspace").items() if isinstance(v, dict)}
        return {"dry_run": True, "would_flush": "all", "keys_per_db": per_db}
    r.flushall(asynchronous=bool(params.get("async", True)))
    return {"flushed": "all", "keys_in_db_before": keys}


def flushdb(r: Any, params: Mapping[str, Any]) -> Any:
    keys = r.dbsize()
    if _dry(params):
        return {"dry_run": True, "would_flush": "db", "keys": keys}
    r.flushdb(asynchronous=bool(params.get("async", True)))
    return {"flushed": "db", "keys_before": keys}


def config_set(r: Any, params: Mapping[str, Any]) -> Any:
    name, value = params.get("name"), params.get("value")
    if not name or value is None:
        raise ConfigError("config_set needs the parameters 'name' and 'value'")
    old = r.config_get(name).get(name)
    if old is None:
        raise ConfigError(f"config_set: {name!r} is not a setting this server knows")
    if _dry(params):
        return {"dry_run": True, "name": name, "old": old, "would_set": str(value)}
    r.config_set(name, value)
    return {"name": name, "old": old, "new": r.config_get(name).get(name)}


def shutdown(r: Any, params: Mapping[str, Any]) -> Any:
    import redis.exceptions as rx

    if _dry(params):
        info = r.info("server")
        return {"dry_run": True, "would_shut_down": f"redis {info.get('redis_version')} "
                f"(pid {info.get('process_id')}, up {info.get('uptime_in_seconds')} s)",
                "save": bool(params.get("save", False))}
    try:
        r.shutdown(save=bool(params.get("save", False)), nosave=not params.get("save", False))
    except rx.ConnectionError:
        pass  # the server closed the connection: that is the success
    return {"shutdown": True}


_DRY = {"type": "boolean", "description": "say what would be done, do nothing"}
_ASYNC = {"type": "boolean", "default": True, "description": "free memory in the background"}
_NODE = {"type": "string", "description": "cluster mode: only this node (host:port); "
                                          "default every master"}


def _spec(name: str, description: str, params: dict[str, Any] | None = None,
          required: tuple[str, ...] = ()) -> ActionSpec:
    return ActionSpec(name=name, description=description, dry_run=True, required=required,
                      params={**(params or {}), "dry_run": _DRY, "node": _NODE})


SPECS: dict[str, ActionSpec] = {s.name: s for s in (
    _spec("slowlog_reset", "SLOWLOG RESET: empty the slow log"),
    _spec("latency_reset", "LATENCY RESET: forget the latency monitor's events"),
    _spec("memory_purge", "MEMORY PURGE: return the allocator's free pages to the OS"),
    _spec("kill_idle_clients", "CLIENT KILL every normal client idle for min_idle_seconds or "
          "more (never replicas, pub/sub, blocked clients or ours)",
          {"min_idle_seconds": {"type": "integer", "minimum": KILL_IDLE_MIN_SECONDS,
                                "description": "idle time in seconds"}},
          ("min_idle_seconds",)),
    _spec("bgsave", "BGSAVE SCHEDULE: write an RDB snapshot in the background"),
    _spec("bgrewriteaof", "BGREWRITEAOF: rewrite the append-only file in the background"),
    _spec("flushall", "FLUSHALL: delete every key of every database", {"async": _ASYNC}),
    _spec("flushdb", "FLUSHDB: delete every key of the connected database", {"async": _ASYNC}),
    _spec("config_set", "CONFIG SET name value (not persisted to redis.conf)",
          {"name": {"type": "string", "minLength": 1, "description": "the setting"},
           "value": {"type": ["string", "number", "boolean"], "description": "its new value"}},
          ("name", "value")),
    _spec("shutdown", "SHUTDOWN the server", {"save": {
        "type": "boolean", "default": False, "description": "SAVE before exiting"}}),
)}

ACTIONS: dict[str, Action] = {
    "slowlog_reset": slowlog_reset, "latency_reset": latency_reset,
    "memory_purge": memory_purge, "kill_idle_clients": kill_idle_clients, "bgsave": bgsave,
    "bgrewriteaof": bgrewriteaof, "flushall": flushall, "flushdb": flushdb,
    "config_set": config_set, "shutdown": shutdown,
}
