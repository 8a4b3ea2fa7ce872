"""Performance findings from global status counters (MySQLTuner's heuristics)."""

from __future__ import annotations

from ...base import Run
from ...models import Severity
from .. import window
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
        run.metric("performance.created_tmp_tables", int(s["Created_tmp_tables"]))
        self._tmp_tables(run)
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
        self._joins(run)
        locks = s["Table_locks_immediate"] + s["Table_locks_waited"]
        immediate = 100.0 - pct(s["Table_locks_waited"], locks)
        if locks >= 1000 and immediate < th(run, "table_locks_immediate_pct"):
            run.finding("mysql.performance.table_lock_contention", Severity.WARNING,
                        f"Only {immediate:.1f}% of table locks were granted immediately",
                        evidence={"table_locks_waited": int(s["Table_locks_waited"]),
                                  "table_locks_immediate": int(s["Table_locks_immediate"])},
                        suggestion="Table locks wait on MyISAM/Aria tables: ALTER TABLE ... "
                        "ENGINE=InnoDB for the busy ones.")

    def _tmp_tables(self, run: Run) -> None:
        """Temporary tables that went to disk, over the window (window.py)."""
        sh = window.share(run, ("performance.created_tmp_disk_tables", "Created_tmp_disk_tables"),
                          ("performance.created_tmp_tables", "Created_tmp_tables"))
        judged = sh.judged
        tmp, made = (sh.pct(), sh.in_window[1]) if judged else (sh.lifetime_pct(),
                                                                sh.whole.total)
        if made < 100 or tmp <= th(run, "tmp_disk_tables_pct"):
            return
        run.finding("mysql.performance.tmp_tables_on_disk",
                    Severity.WARNING if judged else Severity.INFO,
                    f"{tmp}% of temporary tables went to disk {sh.window_text()}"
                    + ("" if judged else "; no window to judge whether they still do"),
                    evidence={**sh.evidence("created_tmp_disk_tables", "created_tmp_tables"),
                              "threshold_pct": th(run, "tmp_disk_tables_pct"),
                              "tmp_table_size": var_num(run, "tmp_table_size"),
                              "max_heap_table_size": var_num(run, "max_heap_table_size")},
                    suggestion="Raise tmp_table_size and max_heap_table_size together (the "
                    "smaller one wins), e.g. SET GLOBAL tmp_table_size=67108864; SET GLOBAL "
                    "max_heap_table_size=67108864; avoid BLOB/TEXT in GROUP BY/ORDER BY.")

    def _joins(self, run: Run) -> None:
        """Joins without indexes a day, from their rate over the window (window.py); at
        least ``joins_without_index_min`` of them in it, so that a handful of joins in a
        few seconds is not extrapolated to a day."""
        full = window.counter(run, "performance.select_full_join", "Select_full_join")
        check = window.counter(run, "performance.select_range_check", "Select_range_check")
        if full.needs_sample or check.needs_sample or not full.seconds:
            run.metric("performance.joins_without_index_per_day", None)
            return
        joins = (full.delta or 0.0) + (check.delta or 0.0)
        per_day = round(joins / full.seconds * 86400.0, 1)
        run.metric("performance.joins_without_index_per_day", per_day)
        if per_day <= th(run, "joins_without_index_per_day") or \
                joins < th(run, "joins_without_index_min"):
            return
        when = (f"in the {full.seconds:.0f} s since the server started" if full.source == "uptime"
                else f"in the last {full.seconds:.0f} s")
        run.finding("mysql.performance.joins_without_indexes", Severity.WARNING,
                    f"{per_day:g} joins a day run without indexes ({int(joins)} {when})",
                    evidence={"select_full_join": int(full.total),
                              "select_range_check": int(check.total),
                              "joins_in_window": int(joins), "joins_per_day": per_day,
                              "window_seconds": round(full.seconds, 1),
                              "window_source": full.source,
                              "threshold_per_day": th(run, "joins_without_index_per_day"),
                              "threshold_in_window": th(run, "joins_without_index_min")},
                    suggestion="Index the join columns of the statements in "
                    "mysql.performance.full_table_scans (EXPLAIN: type=ALL on the joined "
                    "table); raising join_buffer_size only hides it.")

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
