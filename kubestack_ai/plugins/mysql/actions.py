"""Remediation actions of the MySQL plugin. The sandbox has checked the whitelist; each
action also validates its own parameters and refuses anything it does not know."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..deadline import Deadline
from ..errors import ConfigError
from ..execution import ActionSpec
from .client import Session, failure_of
from .constants import KILL_MAX_QUERIES, KILL_MIN_SECONDS, SYSTEM_USERS

KILL_LONG_QUERIES = ActionSpec(
    name="kill_long_queries",
    description="KILL QUERY every client statement running at least min_seconds (never the "
                "connection, replication or system threads, or our own)",
    dry_run=True, required=("min_seconds",),
    params={"min_seconds": {"type": "number", "minimum": KILL_MIN_SECONDS,
                            "description": "statements running this long or longer"},
            "user": {"type": "string", "description": "only this user's statements"},
            "limit": {"type": "integer", "minimum": 1, "maximum": KILL_MAX_QUERIES,
                      "default": KILL_MAX_QUERIES, "description": "at most this many"},
            "dry_run": {"type": "boolean",
                        "description": "list the statements (ids, queries), kill none"}})
SPECS = {KILL_LONG_QUERIES.name: KILL_LONG_QUERIES}
_KILL_PARAMS = set(KILL_LONG_QUERIES.params)


def kill_long_queries(session: Session, deadline: Deadline, params: Mapping[str, Any]
                      ) -> dict[str, Any]:
    """KILL QUERY every client statement running at least ``min_seconds`` (required).

    Only statements (``Query``/``Execute``), never the connection, never replication or
    system threads, never our own connection; ``user`` narrows it to one user,
    ``dry_run`` lists without killing, ``limit`` caps how many (at most 100).
    """
    unknown = sorted(set(params) - _KILL_PARAMS)
    if unknown:
        raise ConfigError(f"kill_long_queries: unknown parameters {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(_KILL_PARAMS))})")
    raw = params.get("min_seconds")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < KILL_MIN_SECONDS:
        raise ConfigError(f"kill_long_queries: min_seconds must be a number >= "
                          f"{KILL_MIN_SECONDS}, got {raw!r}")
    limit = params.get("limit", KILL_MAX_QUERIES)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= KILL_MAX_QUERIES:
        raise ConfigError(f"kill_long_queries: limit must be an integer 1-{KILL_MAX_QUERIES}, "
                          f"got {limit!r}")
    user = params.get("user")
    if user is not None and not isinstance(user, str):
        raise ConfigError(f"kill_long_queries: user must be a string, got {user!r}")
    dry_run = bool(params.get("dry_run", False))
    sql = ("SELECT ID AS id, USER AS user, HOST AS host, DB AS db, TIME AS seconds, "
           "LEFT(INFO, 200) AS query FROM information_schema.PROCESSLIST "
           "WHERE COMMAND IN ('Query', 'Execute') AND TIME >= %s AND ID <> CONNECTION_ID() "
           f"AND USER NOT IN ({', '.join(['%s'] * len(SYSTEM_USERS))})")
    args: list[Any] = [int(raw), *SYSTEM_USERS]
    if user is not None:
        sql += " AND USER = %s"
        args.append(user)
    sql += " ORDER BY TIME DESC LIMIT %s"
    args.append(limit)
    session.set_timeout(deadline)
    from pymysql.cursors import DictCursor

    with session.conn.cursor(DictCursor) as cur:
        cur.execute(sql, args)
        found = list(cur.fetchall())
    killed, gone = [], []
    for r in found:
        entry = {"id": int(r["id"]), "user": r["user"], "host": r["host"], "db": r["db"],
                 "seconds": int(r["seconds"]), "query": r["query"]}
        if dry_run:
            killed.append(entry)
            continue
        deadline.check("kill_long_queries")
        try:
            session.execute(f"KILL QUERY {int(r['id'])}", deadline)
            killed.append(entry)
        except Exception as e:
            fail = failure_of(e)
            if fail is None:
                raise
            gone.append({**entry, "error": str(fail)})  # finished meanwhile, or not ours
    return {"action": "kill_long_queries", "min_seconds": raw, "dry_run": dry_run,
            "killed" if not dry_run else "would_kill": killed, "not_killed": gone}
