"""Remediation actions of the PostgreSQL plugin. The sandbox has checked the whitelist
and the parameters' schema; each action also validates its own parameters, and its dry
run lists exactly what it would touch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..deadline import Deadline
from ..errors import ConfigError
from ..execution import ActionSpec
from .client import Session, failure_of, qualified
from .constants import MAX_BACKENDS

_DRY = {"dry_run": {"type": "boolean", "description": "list what would be touched, touch nothing"}}
_FILTER = {
    "pid": {"type": "integer", "minimum": 1, "description": "this backend only"},
    "idle_in_transaction_seconds": {"type": "number", "minimum": 1,
                                    "description": "sessions idle in a transaction this long"},
    "min_seconds": {"type": "number", "minimum": 1,
                    "description": "active queries running this long"},
    "user": {"type": "string", "description": "only this role's sessions"},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_BACKENDS, "default": MAX_BACKENDS,
              "description": "at most this many"},
    **_DRY,
}

SPECS = {
    "cancel_query": ActionSpec(
        name="cancel_query", dry_run=True, params=_FILTER,
        description="pg_cancel_backend: cancel the running query of a pid, or of every client "
                    "session matching the filter (never our own)"),
    "terminate_backend": ActionSpec(
        name="terminate_backend", dry_run=True, params=_FILTER,
        description="pg_terminate_backend: end a pid's session, or every client session "
                    "matching the filter (e.g. idle in transaction longer than N s)"),
    "drop_replication_slot": ActionSpec(
        name="drop_replication_slot", dry_run=True, required=("slot",),
        params={"slot": {"type": "string", "description": "an inactive slot"}, **_DRY},
        description="pg_drop_replication_slot of an inactive slot (its consumer loses its "
                    "place)"),
    "vacuum_analyze": ActionSpec(
        name="vacuum_analyze", dry_run=True, required=("table",),
        params={"table": {"type": "string", "description": "schema.table (or table)"}, **_DRY},
        description="VACUUM (ANALYZE) one table"),
    "reindex_concurrently": ActionSpec(
        name="reindex_concurrently", dry_run=True, required=("index",),
        params={"index": {"type": "string", "description": "schema.index of an invalid index"},
                **_DRY},
        description="REINDEX INDEX CONCURRENTLY of an invalid index"),
}


def _check(action: str, params: Mapping[str, Any]) -> None:
    unknown = sorted(set(params) - set(SPECS[action].params))
    if unknown:
        raise ConfigError(f"{action}: unknown parameters {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(SPECS[action].params))})")
    for name in SPECS[action].required:
        if not isinstance(params.get(name), str) or not params[name]:
            raise ConfigError(f"{action}: {name} must be a non-empty string")


def _num(params: Mapping[str, Any], name: str) -> float | None:
    v = params.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 1:
        raise ConfigError(f"{name} must be a number >= 1, got {v!r}")
    return float(v)


def _backends(action: str, fn: str, session: Session, deadline: Deadline,
              params: Mapping[str, Any]) -> dict[str, Any]:
    _check(action, params)
    pid, idle, running = params.get("pid"), _num(params, "idle_in_transaction_seconds"), _num(
        params, "min_seconds")
    if pid is None and idle is None and running is None:
        raise ConfigError(f"{action}: give pid, idle_in_transaction_seconds or min_seconds "
                          "(nothing is touched without one)")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        raise ConfigError(f"{action}: pid must be an integer, got {pid!r}")
    limit = params.get("limit", MAX_BACKENDS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_BACKENDS:
        raise ConfigError(f"{action}: limit must be an integer 1-{MAX_BACKENDS}, got {limit!r}")
    sql = ("SELECT pid, usename, application_name, client_addr::text AS client_addr, datname, "
           "state, query_start, xact_start, left(query, 200) AS query FROM pg_stat_activity "
           "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
    args: list[Any] = []
    if pid is not None:
        sql += " AND pid = %s"
        args.append(pid)
    if idle is not None:
        sql += (" AND state IN ('idle in transaction', 'idle in transaction (aborted)') "
                "AND state_change <= now() - make_interval(secs => %s)")
        args.append(idle)
    if running is not None:
        sql += " AND state = 'active' AND query_start <= now() - make_interval(secs => %s)"
        args.append(running)
    if params.get("user") is not None:
        sql += " AND usename = %s"
        args.append(str(params["user"]))
    sql += " ORDER BY coalesce(xact_start, query_start) LIMIT %s"
    args.append(limit)
    found = session.rows(sql, args, deadline)
    dry_run = bool(params.get("dry_run", False))
    done: list[dict[str, Any]] = []
    not_done: list[dict[str, Any]] = []
    for r in found:
        entry = {"pid": r["pid"], "user": r["usename"], "application": r["application_name"],
                 "client": r["client_addr"], "database": r["datname"], "state": r["state"],
                 "query_start": r["query_start"] and r["query_start"].isoformat(),
                 "xact_start": r["xact_start"] and r["xact_start"].isoformat(),
                 "query": r["query"]}
        if dry_run:
            done.append(entry)
            continue
        deadline.check(action)
        ok = session.rows(f"SELECT {fn}(%s) AS ok", [r["pid"]], deadline)[0]["ok"]
        (done if ok else not_done).append(entry)  # False: it ended meanwhile
    key = "would_touch" if dry_run else "touched"
    return {"action": action, "dry_run": dry_run, key: done, "not_touched": not_done}


def cancel_query(session: Session, deadline: Deadline, params: Mapping[str, Any]) -> dict[str, Any]:
    return _backends("cancel_query", "pg_cancel_backend", session, deadline, params)


def terminate_backend(session: Session, deadline: Deadline, params: Mapping[str, Any]
                      ) -> dict[str, Any]:
    return _backends("terminate_backend", "pg_terminate_backend", session, deadline, params)


def drop_replication_slot(session: Session, deadline: Deadline, params: Mapping[str, Any]
                          ) -> dict[str, Any]:
    _check("drop_replication_slot", params)
    slot = params["slot"]
    got = session.rows("SELECT slot_name, slot_type, database, active, wal_status, "
                       "pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN "
                       "pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)"
                       "::bigint AS retained_bytes FROM pg_replication_slots WHERE slot_name = %s",
                       [slot], deadline)
    if not got:
        raise ConfigError(f"drop_replication_slot: no slot named {slot!r}")
    s = dict(got[0])
    if s["active"]:
        raise ConfigError(f"drop_replication_slot: slot {slot!r} is active (its consumer is "
                          "connected): stop the consumer first")
    dry_run = bool(params.get("dry_run", False))
    if not dry_run:
        session.rows("SELECT pg_drop_replication_slot(%s)", [slot], deadline)
    return {"action": "drop_replication_slot", "dry_run": dry_run,
            "would_drop" if dry_run else "dropped": s}


def _relation(session: Session, deadline: Deadline, name: str, kinds: str, what: str
              ) -> dict[str, Any]:
    got = session.rows("SELECT n.nspname AS schema, c.relname AS name, c.relkind, "
                       "pg_relation_size(c.oid) AS size_bytes FROM pg_class c JOIN pg_namespace n "
                       "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)", [name], deadline)
    if not got or got[0]["relkind"] not in kinds:
        raise ConfigError(f"no {what} named {name!r} (give schema.name)")
    return dict(got[0])


def vacuum_analyze(session: Session, deadline: Deadline, params: Mapping[str, Any]) -> dict[str, Any]:
    _check("vacuum_analyze", params)
    rel = _relation(session, deadline, params["table"], "rmp", "table")
    stmt = f"VACUUM (ANALYZE) {qualified(rel['schema'], rel['name'])}"
    dry_run = bool(params.get("dry_run", False))
    if not dry_run:
        session.rows(stmt, None, deadline)
    return {"action": "vacuum_analyze", "dry_run": dry_run, "statement": stmt,
            "table": f"{rel['schema']}.{rel['name']}", "size_bytes": rel["size_bytes"]}


def reindex_concurrently(session: Session, deadline: Deadline, params: Mapping[str, Any]
                         ) -> dict[str, Any]:
    _check("reindex_concurrently", params)
    rel = _relation(session, deadline, params["index"], "iI", "index")
    valid = session.rows("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
                         [params["index"]], deadline)[0]["indisvalid"]
    if valid:
        raise ConfigError(f"reindex_concurrently: index {params['index']!r} is valid: only an "
                          "invalid index is rebuilt by this action")
    stmt = f"REINDEX INDEX CONCURRENTLY {qualified(rel['schema'], rel['name'])}"
    dry_run = bool(params.get("dry_run", False))
    if not dry_run:
        try:
            session.rows(stmt, None, deadline)
        except Exception as e:
            fail = failure_of(e)
            if fail is None:
                raise
            raise ConfigError(f"reindex_concurrently: the server refused: {fail}") from None
    return {"action": "reindex_concurrently", "dry_run": dry_run, "statement": stmt,
            "index": f"{rel['schema']}.{rel['name']}", "size_bytes": rel["size_bytes"]}


RUNNERS: dict[str, Callable[[Session, Deadline, Mapping[str, Any]], dict[str, Any]]] = {
    "cancel_query": cancel_query, "terminate_backend": terminate_backend,
    "drop_replication_slot": drop_replication_slot, "vacuum_analyze": vacuum_analyze,
    "reindex_concurrently": reindex_concurrently,
}
