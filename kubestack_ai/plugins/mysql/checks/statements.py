"""Statement-level findings from performance_schema digests, and query time percentiles
(MySQL 8.0's statement histogram, MariaDB's QUERY_RESPONSE_TIME plugin)."""

from __future__ import annotations

from typing import Any

from ...base import Run
from ...models import Severity
from ..constants import PERCENTILES
from .common import on, rows, server, short, th, var

PS_PER_MS = 1_000_000_000  # performance_schema timers are picoseconds


def percentile_queries(run: Run) -> list[tuple[str, str]]:
    srv = server(run)
    if srv.has_statement_histogram and on(run, "performance_schema"):
        return [("histogram", "SELECT BUCKET_TIMER_HIGH AS high_ps, COUNT_BUCKET_AND_LOWER AS cum "
                 "FROM performance_schema.events_statements_histogram_global "
                 "WHERE COUNT_BUCKET > 0 ORDER BY BUCKET_NUMBER")]
    if srv.mariadb and on(run, "query_response_time_stats"):
        return [("qrt", "SELECT TRIM(TIME) AS upper_s, COUNT AS n "
                 "FROM information_schema.QUERY_RESPONSE_TIME")]
    return []


def _ms(ps: Any) -> float:
    return round(float(ps or 0) / PS_PER_MS, 3)


def _digest(r: dict[str, Any]) -> dict[str, Any]:
    d = {"statement": short(r["text"], 300), "schema": r["db"], "calls": int(r["calls"]),
         "total_ms": _ms(r["total_ps"]), "avg_ms": _ms(r["avg_ps"]),
         "max_ms": _ms(r["max_ps"]), "rows_examined": int(r["examined"]),
         "rows_sent": int(r["sent"]), "no_index_used": int(r["no_index"])}
    if "p95_ps" in r:
        d["p95_ms"], d["p99_ms"] = _ms(r["p95_ps"]), _ms(r["p99_ps"])
    return d


def percentiles_from_cumulative(buckets: list[tuple[float, int]]) -> dict[int, float] | None:
    """``(upper bound, cumulative count)`` in ascending order -> {50: upper, ...}."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    out: dict[int, float] = {}
    for p in PERCENTILES:
        need = total * p / 100.0
        out[p] = next(upper for upper, cum in buckets if cum >= need)
    return out


class StatementChecks:
    def _digest_findings(self, run: Run, rows_by_list: dict[str, list[dict[str, Any]]]) -> None:
        lists = {name: [_digest(r) for r in rs] for name, rs in rows_by_list.items()}
        slowest = lists["slowest"]
        run.metric("performance.top_statements", slowest[:5])
        avg_limit = th(run, "slow_statement_avg_ms")
        slow = [d for d in slowest if d["avg_ms"] >= avg_limit]
        if slow:
            run.finding("mysql.performance.slow_statements", Severity.WARNING,
                        f"{len(slow)} statement digests average over {avg_limit:g} ms",
                        evidence={"statements": slow, "threshold_avg_ms": avg_limit},
                        suggestion="EXPLAIN each statement; add the missing index or rewrite it. "
                        "Digests come from performance_schema.events_statements_summary_by_digest.")
        if lists["no_index"]:
            worst = lists["no_index"][0]
            run.finding("mysql.performance.full_table_scans", Severity.WARNING,
                        f"{len(lists['no_index'])} statements scan whole tables "
                        f"(worst: {short(worst['statement'], 120)})",
                        evidence={"statements": lists["no_index"],
                                  "min_rows_per_call": th(run, "full_scan_min_rows_per_call")},
                        suggestion="Add an index on the columns in each statement's WHERE/JOIN "
                        "(EXPLAIN shows type=ALL), e.g. ALTER TABLE t ADD INDEX (col).")
        if lists["examined"]:
            for d in lists["examined"]:
                d["examined_per_row_returned"] = round(
                    d["rows_examined"] / max(d["rows_sent"], 1), 1)
            run.finding("mysql.performance.rows_examined_high", Severity.WARNING,
                        f"{len(lists['examined'])} statements examine far more rows than they "
                        "return",
                        evidence={"statements": lists["examined"], "ratio_threshold":
                                  th(run, "rows_examined_per_sent")},
                        suggestion="Make the index selective for the filter (composite index "
                        "in WHERE order), or add LIMIT/pagination on an indexed column.")

    def _percentiles(self, run: Run) -> None:
        srv = server(run)
        buckets: list[tuple[float, int]] | None = None
        source = None
        if srv.has_statement_histogram and on(run, "performance_schema"):
            got = rows(run, "histogram", "performance",
                       "performance_schema.events_statements_histogram_global",
                       srv.grant("SELECT", "performance_schema.*"))
            if got is not None:
                buckets = [(_ms(r["high_ps"]), int(r["cum"])) for r in got]
                source = "performance_schema.events_statements_histogram_global"
        elif srv.mariadb and on(run, "query_response_time_stats"):
            got = rows(run, "qrt", "performance", "information_schema.QUERY_RESPONSE_TIME",
                       srv.grant("PROCESS"))
            if got is not None:
                cum, buckets = 0, []
                for r in got:
                    cum += int(r["n"] or 0)
                    upper = r["upper_s"]
                    ms = float("inf") if upper == "TOO LONG" else float(upper) * 1000
                    buckets.append((ms, cum))
                source = "information_schema.QUERY_RESPONSE_TIME"
        result = percentiles_from_cumulative(buckets or [])
        if result is None:
            run.metric("performance.query_percentiles", "not available")
            run.finding("mysql.performance.percentiles_unavailable", Severity.INFO,
                        "Query time percentiles: not available on this server",
                        evidence={"server": srv.label, "source": source,
                                  "reason": _why_not(run, source)},
                        suggestion=_how_to(run))
            return
        for p, v in result.items():
            run.metric(f"performance.query_p{p}_ms", v if v != float("inf") else None)
        limit = th(run, "query_p99_ms")
        p99 = result[99]
        run.metric("performance.query_percentiles_source", source)
        if p99 > limit:
            run.finding("mysql.performance.latency_high", Severity.WARNING,
                        f"99% of statements finish within {p99:g} ms (upper bucket bound), "
                        f"above {limit:g} ms",
                        evidence={f"p{p}_ms": (v if v != float("inf") else "over the last bucket")
                                  for p, v in result.items()} | {"source": source},
                        suggestion="See mysql.performance.slow_statements for the statements "
                        "that weigh most; the histogram's bucket bounds are upper limits.")


def _why_not(run: Run, source: str | None) -> str:
    srv = server(run)
    if source:
        return "no statements counted yet"
    if srv.has_statement_histogram:
        return "performance_schema is OFF"
    if srv.mariadb:
        if var(run, "query_response_time_stats") is None:
            return "the QUERY_RESPONSE_TIME plugin is not installed"
        return "query_response_time_stats is OFF"
    return f"{srv.label} keeps no statement latency histogram (MySQL 8.0 does)"


def _how_to(run: Run) -> str:
    srv = server(run)
    if srv.has_statement_histogram:
        return "Set performance_schema=ON in my.cnf and restart."
    if srv.mariadb:
        if var(run, "query_response_time_stats") is None:
            return ("INSTALL SONAME 'query_response_time'; SET GLOBAL "
                    "query_response_time_stats=ON; (and plugin_load_add=query_response_time, "
                    "query_response_time_stats=ON in my.cnf)")
        return "SET GLOBAL query_response_time_stats=ON; (and in my.cnf)"
    return "Upgrade to MySQL 8.0 (performance_schema.events_statements_histogram_global)."
