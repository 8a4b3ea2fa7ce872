"""InnoDB: buffer pool usage, hit ratio and size against the data, row lock waits, who
blocks whom now, the latest deadlock, history list length, log waits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...base import Run, category
from ...models import Severity
from .. import innodb_status, window
from .common import pct, rate, rows, series, server, short, status, th, var, var_num
from .locks import LockChecks


def queries(run: Run) -> list[tuple[str, str]]:
    srv = server(run)
    out = [("innodb_status", "SHOW ENGINE INNODB STATUS"),
           ("lock_waits", srv.lock_waits_sql)]
    how = run.target.options.get("innodb_data_size", "tables")
    if how == "tables":
        # the tables' own data + index sizes: the working data. Never the system
        # tablespace: ibdata1 holds undo logs, which grow after a bulk insert and never
        # shrink, and are not data the pool must hold
        out.append(("data_size", "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS bytes, "
                    "COUNT(*) AS n FROM information_schema.TABLES WHERE ENGINE = 'InnoDB'"))
    elif how:
        # file sizes of the file-per-table and general tablespaces: cheaper with many
        # tables, an upper bound (free and preallocated pages count); the system, undo
        # and temporary tablespaces and MySQL 8's dictionary are left out
        out.append(("data_size", "SELECT COALESCE(SUM(FILE_SIZE), 0) AS bytes, COUNT(*) AS n "
                    f"FROM {srv.tablespaces_table} WHERE NAME NOT IN ('innodb_system', "
                    "'innodb_temporary', 'mysql') AND NAME NOT LIKE 'innodb\\_undo%'"))
    if srv.deadlock_counter_sql:
        out.append(("deadlock_counter", srv.deadlock_counter_sql))
    return out


class InnodbChecks(LockChecks):
    @category("innodb")
    def check_innodb(self, run: Run) -> None:
        srv = server(run)
        text_rows = rows(run, "innodb_status", "innodb", "SHOW ENGINE INNODB STATUS "
                         "(deadlocks, history list)", srv.grant("PROCESS"))
        text = str(text_rows[0].get("Status") or "") if text_rows else None
        self._buffer_pool(run)
        self._row_locks(run)
        self._lock_waits(run)
        self._deadlocks(run, text)
        self._history(run, text)
        self._log_waits(run)

    def _buffer_pool(self, run: Run) -> None:
        srv = server(run)
        total = status(run, "Innodb_buffer_pool_pages_total", 0) or 0
        data = status(run, "Innodb_buffer_pool_pages_data", 0) or 0
        free = status(run, "Innodb_buffer_pool_pages_free", 0) or 0
        reqs = status(run, "Innodb_buffer_pool_read_requests", 0) or 0
        reads = status(run, "Innodb_buffer_pool_reads", 0) or 0
        wait_free = status(run, "Innodb_buffer_pool_wait_free", 0) or 0
        pool = var_num(run, "innodb_buffer_pool_size") or 0
        run.metric("innodb.buffer_pool_size_mb", round(pool / 1048576, 1))
        run.metric("innodb.buffer_pool_used_pct", pct(data, total))
        run.metric("innodb.buffer_pool_free_pages", int(free))
        hit = round(100.0 - pct(reads, reqs), 3) if reqs else None
        run.metric("innodb.buffer_pool_read_hit_pct", hit)
        run.metric("innodb.buffer_pool_wait_free", int(wait_free))
        if hit is not None and reqs >= th(run, "buffer_pool_min_read_requests") \
                and hit < th(run, "buffer_pool_read_hit_pct"):
            run.finding("mysql.innodb.buffer_pool_hit_low", Severity.WARNING,
                        f"Buffer pool read hit ratio {hit}%: reads go to disk",
                        evidence={"read_requests": int(reqs), "disk_reads": int(reads),
                                  "hit_pct": hit, "buffer_pool_size_mb": round(pool / 1048576)},
                        suggestion="Raise innodb_buffer_pool_size (SET GLOBAL "
                        "innodb_buffer_pool_size=...; online since 5.7/10.2; and in my.cnf), "
                        "up to ~70% of RAM on a dedicated server.")
        self._wait_free(run)
        size = rows(run, "data_size", "innodb", "InnoDB data size", srv.grant("PROCESS"))
        if size:
            bytes_ = int(size[0]["bytes"] or 0)
            run.metric("innodb.data_size_mb", round(bytes_ / 1048576, 1))
            if pool and bytes_ > pool:
                run.finding("mysql.innodb.buffer_pool_small", Severity.WARNING,
                            f"InnoDB data ({bytes_ / 1048576:.0f} MB) exceeds the buffer pool "
                            f"({pool / 1048576:.0f} MB)",
                            evidence={"data_mb": round(bytes_ / 1048576, 1),
                                      "buffer_pool_mb": round(pool / 1048576, 1),
                                      "tablespaces_or_tables": int(size[0]["n"]),
                                      "measured_by": run.target.options.get(
                                          "innodb_data_size", "tables")},
                            suggestion=f"SET GLOBAL innodb_buffer_pool_size={bytes_ * 5 // 4}; "
                            "if RAM allows (and in my.cnf); otherwise the hot set must fit.")

    def _wait_free(self, run: Run) -> None:
        w = window.counter(run, "innodb.buffer_pool_wait_free", "Innodb_buffer_pool_wait_free")
        window.report(run, "mysql.innodb.buffer_pool_wait_free", w,
                      "Queries waited for a free buffer pool page", w.evidence("waits"),
                      "The pool is too small or flushing too slow: raise "
                      "innodb_buffer_pool_size, innodb_io_capacity / innodb_lru_scan_depth.")

    def _deadlocks(self, run: Run, text: str | None) -> None:
        srv = server(run)
        counter = status_int_or_none(run, "Innodb_deadlocks")
        source = "Innodb_deadlocks"
        got = rows(run, "deadlock_counter", "innodb", "information_schema.INNODB_METRICS",
                   srv.grant("PROCESS"))
        if got:
            counter, source = int(got[0]["deadlocks"] or 0), "INNODB_METRICS lock_deadlocks"
            if str(got[0].get("status", "")).lower() != "enabled":
                source += " (counter disabled: SET GLOBAL innodb_monitor_enable='lock_deadlocks')"
        if counter is not None:
            run.metric("innodb.deadlocks", counter)
        points = series(run, "innodb.deadlocks", counter)
        new = (points[-1][1] - points[-2][1]) if len(points) >= 2 else None
        latest = innodb_status.latest_deadlock(text) if text else None
        if latest is None:
            if new and new > 0:
                run.finding("mysql.innodb.deadlocks", Severity.WARNING,
                            f"{int(new)} deadlocks since the last run",
                            evidence={"deadlocks_total": counter, "new": int(new),
                                      "counter": source},
                            suggestion="Grant PROCESS to see the statements (SHOW ENGINE INNODB "
                            "STATUS); set innodb_print_all_deadlocks=ON to log every one.")
            return
        age = _age_seconds(latest.get("at"), run.data.get("now"))
        recent = age is not None and age <= th(run, "deadlock_recent_seconds")
        sev = Severity.WARNING if (new and new > 0) or (new is None and recent) else Severity.INFO
        stmts = [t.get("statement", "") for t in latest["transactions"]]
        tables = sorted({x for t in latest["transactions"] for x in t.get("tables", [])})
        run.finding("mysql.innodb.deadlock", sev,
                    f"Deadlock at {latest.get('at')} on {', '.join(tables) or 'unknown tables'}: "
                    + " <-> ".join(short(s, 80) for s in stmts),
                    evidence={"at": latest.get("at"), "age_seconds": age,
                              "victim": latest.get("victim"),
                              "transactions": latest["transactions"],
                              "deadlocks_total": counter, "new_since_last_run": new,
                              "counter": source,
                              "innodb_print_all_deadlocks": var(run, "innodb_print_all_deadlocks")},
                    suggestion="Make the transactions lock rows in the same order (same "
                    "statement order, ORDER BY the key in multi-row updates), keep them short, "
                    "and index the WHERE columns so fewer rows are locked. The application must "
                    "retry on error 1213. innodb_print_all_deadlocks=ON logs every deadlock "
                    "(only the latest is kept here).")

    def _history(self, run: Run, text: str | None) -> None:
        hll = status_int_or_none(run, "Innodb_history_list_length")
        if hll is None and text:
            hll = innodb_status.history_list_length(text)
        if hll is None:
            return
        run.metric("innodb.history_list_length", hll)
        limit = th(run, "history_list_length")
        if hll > limit:
            run.finding("mysql.innodb.history_list_long", Severity.WARNING,
                        f"History list length {hll}: purge is falling behind",
                        evidence={"history_list_length": hll, "threshold": limit},
                        suggestion="Find and end old transactions (mysql.connection."
                        "long_transactions); raise innodb_purge_threads if writes are heavy.")

    def _log_waits(self, run: Run) -> None:
        waits = status(run, "Innodb_log_waits")
        if waits is None:
            return
        run.metric("innodb.log_waits", int(waits))
        per15 = rate(series(run, "innodb.log_waits", waits), 900)
        limit = th(run, "log_waits_per_15min")
        ev: dict[str, Any] = {"innodb_log_waits": int(waits), "per_15min": per15,
                              "innodb_log_buffer_size": var_num(run, "innodb_log_buffer_size")}
        fix = ("Raise innodb_log_buffer_size (e.g. 64M; dynamic on MySQL 8.0 and MariaDB "
               "10.11, my.cnf otherwise) and check redo log capacity.")
        if per15 is not None and per15 > limit:
            run.finding("mysql.innodb.log_waits_rising", Severity.WARNING,
                        f"InnoDB waited for the log buffer {per15:.0f} times per 15 min",
                        evidence=ev, suggestion=fix)
        elif per15 is None and waits > 0:
            run.finding("mysql.innodb.log_waits", Severity.INFO,
                        f"InnoDB waited for the log buffer {int(waits)} times since start",
                        evidence=ev, suggestion=fix)


def status_int_or_none(run: Run, name: str) -> int | None:
    v = status(run, name)
    return int(v) if v is not None else None


def _age_seconds(at: str | None, now: Any) -> int | None:
    if not at or not isinstance(now, dt.datetime):
        return None
    try:
        when = dt.datetime.fromisoformat(at.replace("T", " "))
    except ValueError:
        return None
    return int((now - when).total_seconds())
