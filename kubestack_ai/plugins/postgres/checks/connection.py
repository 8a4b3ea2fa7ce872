"""Connections: use against max_connections less the reserved slots; by state, user,
application and client; sessions idle in a transaction and for how long."""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from ..client import quote_ident
from .common import backend, grant_monitor, ident, lacking, pct, rows, setting_num, th

ACTIVITY_COLS = ("pid, usename, application_name, client_addr::text AS client_addr, datname, "
                 "state, wait_event_type, wait_event, query_start, xact_start, state_change, "
                 "left(query, 300) AS query, extract(epoch FROM now() - query_start) AS query_s, "
                 "extract(epoch FROM now() - xact_start) AS xact_s, "
                 "extract(epoch FROM now() - state_change) AS idle_s")


def queries(run: Run) -> list[tuple[str, str]]:
    idle = int(th(run, "idle_in_transaction_seconds"))
    return [
        ("conn_groups", "SELECT coalesce(state, backend_type) AS state, usename, "
         "application_name, client_addr::text AS client_addr, count(*) AS n "
         "FROM pg_stat_activity WHERE backend_type = 'client backend' "
         "GROUP BY 1, 2, 3, 4 ORDER BY n DESC"),
        ("idle_in_xact", f"SELECT {ACTIVITY_COLS} FROM pg_stat_activity WHERE state IN "
         "('idle in transaction', 'idle in transaction (aborted)') AND pid <> pg_backend_pid() "
         f"AND state_change <= now() - interval '{idle} seconds' ORDER BY state_change LIMIT 20"),
    ]


def _tally(groups: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in groups:
        k = str(g[key]) if g[key] not in (None, "") else "(none)"
        out[k] = out.get(k, 0) + int(g["n"])
    return dict(sorted(out.items(), key=lambda kv: -kv[1])[:10])


class ConnectionChecks:
    @category("connection")
    def check_connection(self, run: Run) -> None:
        me = ident(run)
        groups = rows(run, "conn_groups", "connection", "pg_stat_activity") or []
        total = sum(int(g["n"]) for g in groups)
        max_conn = int(setting_num(run, "max_connections") or 0)
        reserved = int(setting_num(run, "superuser_reserved_connections") or 0) + int(
            setting_num(run, "reserved_connections") or 0)
        usable = max(max_conn - reserved, 1)
        usage = pct(total, usable)
        by = {k: _tally(groups, c) for k, c in (("by_state", "state"), ("by_user", "usename"),
                                                ("by_application", "application_name"),
                                                ("by_client", "client_addr"))}
        run.metric("connection.total", total)
        run.metric("connection.max_connections", max_conn)
        run.metric("connection.usage_pct", usage)
        run.metric("connection.by_state", by["by_state"])
        ev = {"connections": total, "max_connections": max_conn, "reserved": reserved,
              "usable": usable, "usage_pct": usage, **by}
        warn, crit = th(run, "connections_usage_warning_pct"), th(run, "connections_usage_critical_pct")
        if usage >= warn:
            run.finding("postgres.connection.usage_high",
                        Severity.CRITICAL if usage >= crit else Severity.WARNING,
                        f"{total} of {usable} usable connections in use ({usage}%)",
                        evidence=ev,
                        suggestion="Find who holds them (by_user, by_application, by_client): "
                        "SELECT usename, application_name, client_addr, state, count(*) FROM "
                        "pg_stat_activity GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC; put a pooler "
                        "(PgBouncer) in front, or ALTER SYSTEM SET max_connections = "
                        f"{max(int(max_conn * 1.5), 20)}; (restart).")
        if not me["read_all_stats"]:
            lacking(run, "connection", "other roles' session states and queries",
                    "pg_stat_activity hides them without pg_read_all_stats", grant_monitor(run))
        self._idle_in_xact(run)

    def _idle_in_xact(self, run: Run) -> None:
        got = rows(run, "idle_in_xact", "connection", "pg_stat_activity") or []
        run.metric("connection.idle_in_transaction", len(got))
        if not got:
            return
        limit = th(run, "idle_in_transaction_seconds")
        sessions = [backend(r) for r in got]
        oldest = sessions[0]
        timeout = setting_num(run, "idle_in_transaction_session_timeout") or 0
        run.finding("postgres.connection.idle_in_transaction", Severity.WARNING,
                    f"{len(sessions)} session(s) idle in a transaction for more than {limit:g} s "
                    f"(longest: pid {oldest['pid']}, {oldest['user']}, {oldest.get('idle_s')} s)",
                    evidence={"sessions": sessions, "threshold_s": limit,
                              "idle_in_transaction_session_timeout_ms": int(timeout)},
                    suggestion="Commit or roll back in the application; end the oldest: "
                    f"SELECT pg_terminate_backend({oldest['pid']}); (action terminate_backend "
                    f"with idle_in_transaction_seconds={int(limit)}); guard with ALTER ROLE "
                    f"{quote_ident(str(oldest['user']))} SET idle_in_transaction_session_timeout "
                    "= '5min';")
