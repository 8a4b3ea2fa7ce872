"""Performance: slowest statements (performance_schema digests), full table scans, rows
examined against rows sent, query time percentiles, slow log, temporary tables on disk,
sort merge passes, joins without indexes, table cache, open files, table locks, stalls."""

from __future__ import annotations

from ...base import Run, category
from ...models import Severity
from .common import on, rows, server, status, var, var_num
from .counters import CounterChecks
from .statements import StatementChecks, percentile_queries

_P_S_TABLE = "performance_schema.events_statements_summary_by_digest"


def _filter() -> str:
    # our own reads of the catalog and SHOW statements are not the workload
    return ("DIGEST_TEXT IS NOT NULL AND (SCHEMA_NAME IS NULL OR SCHEMA_NAME NOT IN "
            "('performance_schema','information_schema','mysql','sys')) "
            "AND DIGEST_TEXT NOT LIKE '%performance_schema%' "
            "AND DIGEST_TEXT NOT LIKE '%information_schema%' "
            "AND DIGEST_TEXT NOT LIKE 'SHOW %'")


def queries(run: Run) -> list[tuple[str, str]]:
    srv = server(run)
    out = percentile_queries(run)
    if not on(run, "performance_schema"):
        return out
    n = int(run.threshold("top_statements", 10))
    min_rows = int(run.threshold("full_scan_min_rows_per_call", 1000))
    ratio = int(run.threshold("rows_examined_per_sent", 100))
    min_examined = int(run.threshold("rows_examined_min", 100000))
    cols = ("SCHEMA_NAME AS db, LEFT(DIGEST_TEXT, 512) AS text, COUNT_STAR AS calls, "
            "SUM_TIMER_WAIT AS total_ps, AVG_TIMER_WAIT AS avg_ps, MAX_TIMER_WAIT AS max_ps, "
            "SUM_ROWS_EXAMINED AS examined, SUM_ROWS_SENT AS sent, "
            "SUM_ROWS_AFFECTED AS affected, SUM_NO_INDEX_USED AS no_index, "
            "SUM_NO_GOOD_INDEX_USED AS no_good_index, "
            "SUM_CREATED_TMP_DISK_TABLES AS tmp_disk, SUM_SORT_MERGE_PASSES AS merge_passes")
    if srv.has_digest_quantiles:
        cols += ", QUANTILE_95 AS p95_ps, QUANTILE_99 AS p99_ps"
    f = _filter()
    digests = (
        f"(SELECT 'slowest' AS list, {cols} FROM {_P_S_TABLE} WHERE {f} "
        f"ORDER BY SUM_TIMER_WAIT DESC LIMIT {n}) UNION ALL "
        f"(SELECT 'no_index' AS list, {cols} FROM {_P_S_TABLE} WHERE {f} "
        f"AND SUM_NO_INDEX_USED > 0 AND SUM_ROWS_EXAMINED >= COUNT_STAR * {min_rows} "
        f"ORDER BY SUM_ROWS_EXAMINED DESC LIMIT {n}) UNION ALL "
        f"(SELECT 'examined' AS list, {cols} FROM {_P_S_TABLE} WHERE {f} "
        f"AND SUM_ROWS_EXAMINED >= {min_examined} AND SUM_ROWS_EXAMINED > "
        f"{ratio} * GREATEST(SUM_ROWS_SENT + SUM_ROWS_AFFECTED, 1) "
        f"ORDER BY SUM_ROWS_EXAMINED / GREATEST(SUM_ROWS_SENT + SUM_ROWS_AFFECTED, 1) DESC "
        f"LIMIT {n})")
    out += [
        ("ps_consumers", "SELECT NAME AS name, ENABLED AS enabled FROM "
         "performance_schema.setup_consumers WHERE NAME IN ('global_instrumentation', "
         "'thread_instrumentation', 'statements_digest')"),
        ("digest_count", f"SELECT COUNT(*) AS digests, COALESCE(SUM(COUNT_STAR), 0) AS calls "
         f"FROM {_P_S_TABLE}"),
        ("digests", digests),
    ]
    return out


class PerformanceChecks(StatementChecks, CounterChecks):
    @category("performance")
    def check_performance(self, run: Run) -> None:
        self._statements(run)
        self._percentiles(run)
        self._slow_log(run)
        self._ratios(run)
        self._server_limits(run)

    # -- statement digests ----------------------------------------------------------------

    def _statements(self, run: Run) -> None:
        srv = server(run)
        if not on(run, "performance_schema"):
            run.metric("performance.digests_available", False)
            run.finding("mysql.performance.performance_schema_off", Severity.INFO,
                        "Statement statistics not available: performance_schema is OFF",
                        evidence={"performance_schema": var(run, "performance_schema"),
                                  "server": srv.label},
                        suggestion="Set performance_schema=ON in my.cnf ([mysqld] section) "
                        "and restart: it cannot be turned on at runtime. Slowest statements, "
                        "full scans and rows examined per statement come from it.")
            return
        grant = srv.grant("SELECT", "performance_schema.*")
        consumers = rows(run, "ps_consumers", "performance", "performance_schema.setup_consumers",
                         grant)
        if consumers is not None:
            off = sorted(r["name"] for r in consumers if str(r["enabled"]).upper() != "YES")
            if off:
                run.finding("mysql.performance.digest_consumer_off", Severity.WARNING,
                            f"performance_schema consumers disabled: {', '.join(off)}",
                            evidence={"disabled": off},
                            suggestion="UPDATE performance_schema.setup_consumers SET ENABLED='YES' "
                            f"WHERE NAME IN ({', '.join(repr(x) for x in off)}); and in my.cnf "
                            + " ".join(f"performance-schema-consumer-{x.replace('_', '-')}=ON"
                                       for x in off))
        count = rows(run, "digest_count", "performance", _P_S_TABLE, grant)
        if count:
            run.metric("performance.digests", int(count[0]["digests"] or 0))
            lost = status(run, "Performance_schema_digest_lost", 0) or 0
            size = var_num(run, "performance_schema_digests_size")
            if lost > 0:
                run.finding("mysql.performance.digests_lost", Severity.INFO,
                            f"{int(lost)} statements were not summarised: the digest table is full",
                            evidence={"digest_lost": int(lost), "digests": count[0]["digests"],
                                      "performance_schema_digests_size": size},
                            suggestion="Raise performance_schema_digests_size in my.cnf "
                            "(restart), or TRUNCATE performance_schema."
                            "events_statements_summary_by_digest after reading it.")
        got = rows(run, "digests", "performance", _P_S_TABLE, grant)
        if got is None:
            return
        run.metric("performance.digests_available", True)
        self._digest_findings(run, got)
