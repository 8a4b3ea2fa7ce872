"""Performance findings from global status counters (MySQLTuner's heuristics)."""

from __future__ import annotations

from ...base import Run
from ...models import Severity
from .common import on, pct, series, status, th, var, var_num


class CounterChecks:
    def _slow_log(self, run: Run) -> None:
        questions = status(run, "Questions", 0) or 0
        slow = status(run, "Slow_queries", 0) or 0
        run.metric("performance.questions", int(questions))
        run.metric("performance.slow_queries", int(slow))
        lqt = var_num(run, "long_query_time")
        if not on(run, "slow_query_log"):
            run.finding("mysql.performance.slow_log_off", Severity.INFO,
                        "The slow query log is off",
                        evidence={"slow_query_log": var(run, "slow_query_log"),
                                  "long_query_time": lqt},
                        suggestion="SET GLOBAL slow_query_log=ON; SET GLOBAL long_query_time=1; "
                        "and slow_query_log=ON, long_query_time=1 in my.cnf.")
        limit = th(run, "long_query_time_max_s")
        if lqt is not None and lqt > limit:
            run.finding("mysql.performance.long_query_time_high", Severity.WARNING,
                        f"long_query_time is {lqt:g} s: slow statements below it go unlogged",
                        evidence={"long_query_time": lqt, "threshold_s": limit},
                        suggestion="SET GLOBAL long_query_time=1; (and in my.cnf).")
        share = pct(slow, questions)
        if questions >= th(run, "min_questions_for_ratios") and \
                share > th(run, "slow_queries_pct"):
            run.finding("mysql.performance.slow_queries_high", Severity.WARNING,
                        f"{share}% of statements are slow (over long_query_time)",
                        evidence={"slow_queries": int(slow), "questions": int(questions),
                                  "pct": share, "long_query_time": lqt},
                        suggestion="Read the slow log (pt-query-digest) or "
                        "mysql.performance.slow_statements and index the worst statements.")

    def _ratios(self, run: Run) -> None:
        s = {k: status(run, k, 0) or 0 for k in (
            "Created_tmp_disk_tables", "Created_tmp_tables", "Sort_merge_passes", "Sort_scan",
            "Sort_range", "Select_full_join", "Select_range_check", "Select_scan", "Com_select",
            "Uptime", "Handler_read_rnd_next", "Table_locks_immediate", "Table_locks_waited")}
        for k in ("Created_tmp_disk_tables", "Sort_merge_passes", "Select_full_join",
                  "Select_scan", "Select_range_check"):
            run.metric(f"performance.{k.lower()}", int(s[k]))
        tmp = pct(s["Created_tmp_disk_tables"], s["Created_tmp_tables"])
        if s["Created_tmp_tables"] >= 100 and tmp > th(run, "tmp_disk_tables_pct"):
            run.finding("mysql.performance.tmp_tables_on_disk", Severity.WARNING,
                        f"{tmp}% of temporary tables went to disk",
                        evidence={"created_tmp_disk_tables": int(s["Created_tmp_disk_tables"]),
                                  "created_tmp_tables": int(s["Created_tmp_tables"]),
                                  "tmp_table_size": var_num(run, "tmp_table_size"),
                                  "max_heap_table_size": var_num(run, "max_heap_table_size")},
                        suggestion="Raise tmp_table_size and max_heap_table_size together (the "
                        "smaller one wins), e.g. SET GLOBAL tmp_table_size=67108864; SET GLOBAL "
                        "max_heap_table_size=67108864; avoid BLOB/TEXT in GROUP BY/ORDER BY.")
        sorts = s["Sort_scan"] + s["Sort_range"]
        merge = pct(s["Sort_merge_passes"], sorts)
        if sorts >= 100 and merge > th(run, "sort_merge_passes_pct"):
            run.finding("mysql.performance.sort_merge_passes", Severity.WARNING,
                        f"Sorts needed {merge}% merge passes",
                        evidence={"sort_merge_passes": int(s["Sort_merge_passes"]),
                                  "sorts": int(sorts), "sort_buffer_size":
                                  var_num(run, "sort_buffer_size")},
                        suggestion="Raise sort_buffer_size for the sessions that sort "
                        "(SET SESSION sort_buffer_size=...), or index the ORDER BY columns.")
        joins = s["Select_full_join"] + s["Select_range_check"]
        # a per-day figure from at least one day of uptime: never extrapolated from
        # minutes (20 joins in 2 s of uptime are not "864000 a day")
        days = s["Uptime"] / 86400.0
        per_day = round(joins / days, 1) if days >= 1 else None
        run.metric("performance.joins_without_index_per_day", per_day)
        if per_day is not None and per_day > th(run, "joins_without_index_per_day"):
            run.finding("mysql.performance.joins_without_indexes", Severity.WARNING,
                        f"{per_day:g} joins a day run without indexes ({int(joins)} in "
                        f"{days:.1f} days of uptime)",
                        evidence={"select_full_join": int(s["Select_full_join"]),
                                  "select_range_check": int(s["Select_range_check"]),
                                  "joins_per_day": per_day, "uptime_seconds": int(s["Uptime"]),
                                  "uptime_days": round(days, 2)},
                        suggestion="Index the join columns of the statements in "
                        "mysql.performance.full_table_scans (EXPLAIN: type=ALL on the joined "
                        "table); raising join_buffer_size only hides it.")
        locks = s["Table_locks_immediate"] + s["Table_locks_waited"]
        immediate = 100.0 - pct(s["Table_locks_waited"], locks)
        if locks >= 1000 and immediate < th(run, "table_locks_immediate_pct"):
            run.finding("mysql.performance.table_lock_contention", Severity.WARNING,
                        f"Only {immediate:.1f}% of table locks were granted immediately",
                        evidence={"table_locks_waited": int(s["Table_locks_waited"]),
                                  "table_locks_immediate": int(s["Table_locks_immediate"])},
                        suggestion="Table locks wait on MyISAM/Aria tables: ALTER TABLE ... "
                        "ENGINE=InnoDB for the busy ones.")

    def _server_limits(self, run: Run) -> None:
        hits = status(run, "Table_open_cache_hits")
        misses = status(run, "Table_open_cache_misses")
        if hits is not None and misses is not None and hits + misses >= 1000:
            rate = pct(hits, hits + misses)
            run.metric("performance.table_cache_hit_pct", rate)
            if rate < th(run, "table_cache_hit_pct"):
                run.finding("mysql.performance.table_cache_low", Severity.WARNING,
                            f"Table cache hit rate {rate}%",
                            evidence={"hits": int(hits), "misses": int(misses),
                                      "table_open_cache": var_num(run, "table_open_cache")},
                            suggestion="Raise table_open_cache (SET GLOBAL table_open_cache=N; "
                            "and in my.cnf), keeping it below open_files_limit.")
        open_files = status(run, "Open_files")
        limit = var_num(run, "open_files_limit")
        if open_files is not None and limit:
            used = pct(open_files, limit)
            run.metric("performance.open_files_pct", used)
            if used > th(run, "open_files_pct"):
                run.finding("mysql.performance.open_files_high", Severity.WARNING,
                            f"{used}% of open_files_limit in use",
                            evidence={"open_files": int(open_files), "open_files_limit": limit},
                            suggestion="Raise open_files_limit in my.cnf (and LimitNOFILE in "
                            "the systemd unit), then restart.")
        running = status(run, "Threads_running", 0) or 0
        run.metric("performance.threads_running", int(running))
        limit_r = th(run, "threads_running")
        if running > limit_r:
            # pt-stalk waits for 5 checks in a row; runs are minutes apart, so report how
            # many consecutive runs (this one included) were above the threshold
            points = series(run, "performance.threads_running", running)
            streak = 0
            for _, v in reversed(points):
                if v <= limit_r:
                    break
                streak += 1
            run.finding("mysql.performance.threads_running_high", Severity.WARNING,
                        f"{int(running)} threads running at once (stall threshold {limit_r:g})"
                        + (f", {streak} runs in a row" if streak > 1 else ""),
                        evidence={"threads_running": int(running), "threshold": limit_r,
                                  "consecutive_runs_above": streak},
                        suggestion="A pile-up: see mysql.connection.long_queries and "
                        "mysql.innodb.lock_waits for what the threads wait on.")
