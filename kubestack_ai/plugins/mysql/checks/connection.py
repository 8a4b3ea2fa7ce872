"""Connections: usage against max_connections, refused and aborted connections, the
distribution by source host and user, long-running queries and transactions, the
thread cache."""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from .. import window
from ..constants import NOT_QUERIES, SYSTEM_USERS
from .common import cannot_read, pct, rows, server, short, status, th, var_num


def _in(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def queries(run: Run) -> list[tuple[str, str]]:
    long_s = int(th(run, "long_query_seconds"))
    trx_s = int(min(th(run, "long_trx_seconds"), th(run, "blocking_trx_seconds")))
    return [
        ("by_source", "SELECT USER AS user, SUBSTRING_INDEX(HOST, ':', 1) AS host, "
         "COUNT(*) AS n, SUM(COMMAND = 'Sleep') AS idle FROM information_schema.PROCESSLIST "
         "GROUP BY USER, SUBSTRING_INDEX(HOST, ':', 1) ORDER BY n DESC LIMIT 20"),
        ("long_queries", "SELECT ID AS id, USER AS user, HOST AS host, DB AS db, "
         "COMMAND AS command, TIME AS seconds, STATE AS state, LEFT(INFO, 512) AS query "
         f"FROM information_schema.PROCESSLIST WHERE COMMAND NOT IN ({_in(NOT_QUERIES)}) "
         f"AND USER NOT IN ({_in(SYSTEM_USERS)}) AND ID <> CONNECTION_ID() "
         f"AND TIME >= {long_s} ORDER BY TIME DESC LIMIT 20"),
        ("long_trx", "SELECT trx_mysql_thread_id AS thread_id, trx_state AS state, "
         "TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS seconds, trx_rows_modified AS "
         "rows_modified, trx_rows_locked AS rows_locked, LEFT(trx_query, 512) AS query "
         f"FROM information_schema.INNODB_TRX WHERE trx_started <= NOW() - INTERVAL {trx_s} "
         "SECOND ORDER BY trx_started LIMIT 20"),
        # who others wait on: a transaction that blocks is long at a lower age
        ("blockers", server(run).blockers_sql),
    ]


class ConnectionChecks:
    @category("connection")
    def check_connection(self, run: Run) -> None:
        srv = server(run)
        by_source = rows(run, "by_source", "connection", "information_schema.PROCESSLIST")
        # USER_PRIVILEGES misses privileges held through roles: reading INNODB_TRX (which
        # needs PROCESS too) proves the privilege
        has_process = run.data.get("has_process") or isinstance(run.data["q"].get("long_trx"),
                                                                  list)
        if by_source is not None and not has_process:
            cannot_read(run, "connection", "other users' connections (PROCESSLIST shows only "
                        "your own without PROCESS)", "PROCESS privilege not granted",
                        srv.grant("PROCESS"))
        dist = [{"user": r["user"], "host": r["host"], "connections": int(r["n"]),
                 "idle": int(r["idle"] or 0)} for r in by_source or []]
        run.metric("connection.by_source", dist)
        self._usage(run, dist)
        self._aborted(run)
        self._thread_cache(run)
        self._long_running(run)

    def _usage(self, run: Run, dist: list[dict[str, Any]]) -> None:
        connected = status(run, "Threads_connected", 0) or 0
        max_used = status(run, "Max_used_connections", 0) or 0
        max_conn = var_num(run, "max_connections") or 0
        refused = status(run, "Connection_errors_max_connections", 0) or 0
        usage, peak = pct(connected, max_conn), pct(max_used, max_conn)
        full = window.limit_reached(run)
        run.metric("connection.threads_connected", int(connected))
        run.metric("connection.max_connections", int(max_conn))
        run.metric("connection.max_used_connections", int(max_used))
        run.metric("connection.usage_pct", usage)
        run.metric("connection.refused_max_connections", int(refused))
        run.metric("connection.max_connections_reached", full)
        ev = {"threads_connected": int(connected), "max_connections": int(max_conn),
              "usage_pct": usage, "max_used_connections": int(max_used),
              "max_connections_reached": full, "top_sources": dist[:5]}
        warn = th(run, "connections_usage_warning_pct")
        crit = th(run, "connections_usage_critical_pct")
        fix = (f"Find who holds the connections (top_sources); fix pooling/leaks, or raise "
               f"max_connections: SET GLOBAL max_connections={max(int(max_conn * 1.5), 10)}; "
               "(and in my.cnf; each connection costs memory).")
        if usage >= warn:
            run.finding("mysql.connection.usage_high",
                        Severity.CRITICAL if usage >= crit else Severity.WARNING,
                        f"{int(connected)} of {int(max_conn)} connections in use ({usage}%)",
                        evidence=ev, suggestion=fix)
        elif peak >= th(run, "max_used_connections_pct"):
            run.finding("mysql.connection.max_used_high", Severity.WARNING,
                        f"Connections peaked at {int(max_used)} of {int(max_conn)} ({peak}%)",
                        evidence=ev, suggestion=fix)
        self._refused(run, ev, fix)

    def _refused(self, run: Run, ev: dict[str, Any], fix: str) -> None:
        """Logins refused with error 1040. MySQL counts them in
        Connection_errors_max_connections; MariaDB does not (it refuses after the login
        handshake and counts an aborted connect), so there the signal is the one true on
        both: the server was full (Max_used_connections >= max_connections), with
        Aborted_connects as the count (an upper bound: failed logins count there too)."""
        mysql_counter = window.counter(run, "connection.refused_max_connections",
                                       "Connection_errors_max_connections")
        w, counter = mysql_counter, "Connection_errors_max_connections"
        if mysql_counter.total == 0 and server(run).mariadb:
            if not ev["max_connections_reached"]:
                return
            w, counter = window.counter(run, "connection.aborted_connects",
                                        "Aborted_connects"), "Aborted_connects"
        evidence = {**ev, "counter": counter, **w.evidence("refused")}
        if counter == "Aborted_connects":
            evidence["note"] = ("MariaDB does not count 1040 refusals in "
                                "Connection_errors_max_connections; Aborted_connects holds "
                                "them and failed logins")
        window.report(run, "mysql.connection.refused", w,
                      f"Logins refused at max_connections ({counter})", evidence, fix)

    def _aborted(self, run: Run) -> None:
        """Failed connection attempts (MySQLTuner's aborted connects share), judged over
        the window like every counter (window.py): a lifetime share alone is an info."""
        conns = status(run, "Connections", 0) or 0
        clients = status(run, "Aborted_clients", 0) or 0
        run.metric("connection.connections", int(conns))
        run.metric("connection.aborted_connects", int(status(run, "Aborted_connects", 0) or 0))
        run.metric("connection.aborted_clients", int(clients))
        s = window.share(run, ("connection.aborted_connects", "Aborted_connects"),
                         ("connection.connections", "Connections"))
        limit = th(run, "aborted_connects_pct")
        fix = ("Look for clients with wrong credentials or timeouts (log_warnings=2 / "
               "log_error_verbosity=3 logs them); raise connect_timeout for slow networks.")
        ev = {**s.evidence("aborted_connects", "connections"), "threshold_pct": limit}
        if s.judged:
            if s.in_window[1] >= th(run, "min_connections_for_ratios") and s.pct() > limit:
                run.finding("mysql.connection.aborted_connects", Severity.WARNING,
                            f"{s.pct()}% of connection attempts failed {s.window_text()}",
                            evidence=ev, suggestion=fix)
        elif conns >= th(run, "min_connections_for_ratios") and s.lifetime_pct() > limit:
            run.finding("mysql.connection.aborted_connects", Severity.INFO,
                        f"{s.lifetime_pct()}% of connection attempts failed since start; no "
                        "window to judge whether they still do", evidence=ev,
                        suggestion="Run again: history from this run gives the rate. " + fix)
        share_c = pct(clients, conns)
        if conns >= th(run, "min_connections_for_ratios") and \
                share_c > th(run, "aborted_clients_pct"):
            run.finding("mysql.connection.aborted_clients", Severity.INFO,
                        f"{share_c}% of connections ended without a proper close",
                        evidence={"aborted_clients": int(clients), "connections": int(conns)},
                        suggestion="Clients die or idle past wait_timeout: close connections "
                        "explicitly, size pool idle timeouts below wait_timeout.")

    def _thread_cache(self, run: Run) -> None:
        """New threads per connection over the window (MySQLTuner's thread cache hit rate)."""
        run.metric("connection.threads_created", int(status(run, "Threads_created", 0) or 0))
        s = window.share(run, ("connection.threads_created", "Threads_created"),
                         ("connection.connections", "Connections"))
        if s.judged:
            if s.in_window[1] < th(run, "min_connections_for_ratios"):
                return
            hit = round(100.0 - s.pct(), 2)
        else:
            hit = round(100.0 - s.lifetime_pct(), 2)
            if s.whole.total < th(run, "min_connections_for_ratios"):
                return
        run.metric("connection.thread_cache_hit_pct", hit)
        if hit <= th(run, "thread_cache_hit_pct"):
            size = var_num(run, "thread_cache_size")
            run.finding("mysql.connection.thread_cache_low",
                        Severity.WARNING if s.judged else Severity.INFO,
                        f"Thread cache hit rate {hit}% {s.window_text()}"
                        + ("" if s.judged else "; no window to judge whether it still is"),
                        evidence={**s.evidence("threads_created", "connections"),
                                  "thread_cache_hit_pct": hit, "thread_cache_size": size,
                                  "threshold_pct": th(run, "thread_cache_hit_pct")},
                        suggestion=f"SET GLOBAL thread_cache_size={max(int((size or 0) * 2), 64)}; "
                        "(and in my.cnf).")

    def _long_running(self, run: Run) -> None:
        srv = server(run)
        long_q = rows(run, "long_queries", "connection", "information_schema.PROCESSLIST")
        if long_q:
            qs = [{"id": int(r["id"]), "user": r["user"], "host": r["host"], "db": r["db"],
                   "seconds": int(r["seconds"]), "state": r["state"],
                   "query": short(r["query"], 200)} for r in long_q]
            limit = th(run, "long_query_seconds")
            run.finding("mysql.connection.long_queries", Severity.WARNING,
                        f"{len(qs)} queries running for more than {limit:g} s "
                        f"(longest {qs[0]['seconds']} s)",
                        evidence={"queries": qs, "threshold_s": limit},
                        suggestion="EXPLAIN them; KILL QUERY <id> (action kill_long_queries "
                        "with min_seconds) if they must stop; set max_execution_time (MySQL) / "
                        "max_statement_time (MariaDB) as a guard.")
        run.metric("connection.long_queries", len(long_q or []))
        trx = rows(run, "long_trx", "connection", "information_schema.INNODB_TRX",
                   srv.grant("PROCESS"))
        blockers = {int(r["thread_id"]): int(r["waiters"]) for r in rows(
            run, "blockers", "connection", srv.lock_waits_source, srv.lock_waits_grant) or []}
        limit, limit_blk = th(run, "long_trx_seconds"), th(run, "blocking_trx_seconds")
        ts = [{"thread_id": int(r["thread_id"]), "seconds": int(r["seconds"]),
               "state": r["state"], "rows_modified": int(r["rows_modified"]),
               "rows_locked": int(r["rows_locked"]), "query": short(r["query"], 200),
               "blocks": blockers.get(int(r["thread_id"]), 0)} for r in trx or []]
        ts = [t for t in ts if t["seconds"] >= limit or (t["blocks"] and t["seconds"] >= limit_blk)]
        if ts:
            n_blocking = sum(1 for t in ts if t["blocks"])
            run.finding("mysql.connection.long_transactions", Severity.WARNING,
                        f"{len(ts)} transactions open for more than "
                        f"{min(limit, limit_blk) if n_blocking else limit:g} s "
                        f"(oldest {ts[0]['seconds']} s"
                        + (f"; {n_blocking} blocking others" if n_blocking else "") + ")",
                        evidence={"transactions": ts, "threshold_s": limit,
                                  "blocking_threshold_s": limit_blk},
                        suggestion="Commit or roll back in the application (an idle client "
                        "holding a transaction shows query=None); KILL <thread_id> ends it. "
                        "Old transactions hold locks and stop purge (history list grows); one "
                        "that blocks others (blocks > 0) is long after "
                        f"{limit_blk:g} s: its waiters fail at innodb_lock_wait_timeout.")
        run.metric("connection.long_transactions", len(ts))
