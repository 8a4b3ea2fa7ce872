"""Statement-level findings from performance_schema digests, and query time percentiles
(MySQL 8.0's statement histogram, MariaDB's QUERY_RESPONSE_TIME plugin)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...base import Run
from ...models import Severity
from ..constants import PERCENTILES
from . import digests
from .common import on, rows, server, short, status, th, var

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


def _digest(r: dict[str, Any], weigh: Weigh) -> dict[str, Any]:
    d = {"statement": short(r["text"], 300), "schema": r["db"], "calls": int(r["calls"]),
         "total_ms": _ms(r["total_ps"]), "avg_ms": _ms(r["avg_ps"]),
         "max_ms": _ms(r["max_ps"]), "rows_examined": int(r["examined"]),
         "rows_sent": int(r["sent"]), "no_index_used": int(r["no_index"])}
    if "p95_ps" in r:
        d["p95_ms"], d["p99_ms"] = _ms(r["p95_ps"]), _ms(r["p99_ps"])
    return d | weigh(r)


class Weigh:
    """How much a digest costs the server: its calls, its share of all statements' time
    and its rows examined per second over the time it has been counted (since its
    FIRST_SEEN, at most the uptime, at least a minute). A digest warns only when it is
    the workload: at least ``statement_min_calls`` calls, and ``statement_rows_examined_per_s``
    rows a second or ``statement_time_share_pct`` % of the time. A dump, backup or
    checksum tool's statement (digests.tool) never warns: it reads everything on purpose."""

    def __init__(self, run: Run, total_ps: float) -> None:
        self.total_ps = total_ps
        self.now = run.data.get("now")
        self.uptime = status(run, "Uptime", 0) or 0
        self.min_calls = th(run, "statement_min_calls")
        self.rows_per_s = th(run, "statement_rows_examined_per_s")
        self.share_pct = th(run, "statement_time_share_pct")

    def __call__(self, r: dict[str, Any]) -> dict[str, Any]:
        seconds = self.uptime
        first = r.get("first_seen")
        if isinstance(first, dt.datetime) and isinstance(self.now, dt.datetime):
            seconds = min(seconds, (self.now - first).total_seconds())
        seconds = max(seconds, 60.0)
        per_s = round(int(r["examined"]) / seconds, 1)
        share = round(100.0 * float(r["total_ps"] or 0) / self.total_ps, 2) if self.total_ps else 0.0
        is_tool = digests.tool(r["text"])
        costly = per_s >= self.rows_per_s or share >= self.share_pct
        return {"rows_examined_per_s": per_s, "time_share_pct": share,
                "counted_seconds": int(seconds), "tool": is_tool,
                "warns": not is_tool and int(r["calls"]) >= self.min_calls and costly}

    def rule(self) -> dict[str, float]:
        return {"min_calls": self.min_calls, "min_rows_examined_per_s": self.rows_per_s,
                "min_time_share_pct": self.share_pct}


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
    def _digest_findings(self, run: Run, rows_by_list: dict[str, list[dict[str, Any]]],
                         total_ps: float) -> None:
        weigh = Weigh(run, total_ps)
        lists = {name: [_digest(r, weigh) for r in rs] for name, rs in rows_by_list.items()}
        run.metric("performance.top_statements", lists["slowest"][:5])
        avg_limit = th(run, "slow_statement_avg_ms")
        self._judged(run, "slow_statements", weigh,
                     [d for d in lists["slowest"] if d["avg_ms"] >= avg_limit],
                     f"statement digests average over {avg_limit:g} ms",
                     {"threshold_avg_ms": avg_limit},
                     "EXPLAIN each statement; add the missing index or rewrite it. Digests come "
                     "from performance_schema.events_statements_summary_by_digest.")
        self._judged(run, "full_table_scans", weigh, lists["no_index"],
                     "statements scan whole tables",
                     {"min_rows_per_call": th(run, "full_scan_min_rows_per_call")},
                     "Add an index on the columns in each statement's WHERE/JOIN "
                     "(EXPLAIN shows type=ALL), e.g. ALTER TABLE t ADD INDEX (col).")
        for d in lists["examined"]:
            d["examined_per_row_returned"] = round(d["rows_examined"] / max(d["rows_sent"], 1), 1)
        self._judged(run, "rows_examined_high", weigh, lists["examined"],
                     "statements examine far more rows than they return",
                     {"ratio_threshold": th(run, "rows_examined_per_sent")},
                     "Make the index selective for the filter (composite index in WHERE "
                     "order), or add LIMIT/pagination on an indexed column.")

    @staticmethod
    def _judged(run: Run, what: str, weigh: Weigh, found: list[dict[str, Any]], title: str,
                extra: dict[str, Any], suggestion: str) -> None:
        """One finding for a digest list: a warning for the statements that are the
        workload (Weigh), else info for the infrequent ones; tools' statements are only
        counted."""
        tools = [d for d in found if d["tool"]]
        warns = [d for d in found if d["warns"]]
        rest = [d for d in found if not d["tool"] and not d["warns"]]
        shown = warns or rest
        if not shown:
            if tools:
                run.metric(f"performance.{what}_tool_statements", len(tools))
            return
        evidence = {"statements": shown, **extra, "warning_rule": weigh.rule(),
                    "tool_statements_ignored": len(tools)}
        if warns:
            worst = warns[0]["statement"]
            run.finding(f"mysql.performance.{what}", Severity.WARNING,
                        f"{len(warns)} {title} (worst: {short(worst, 120)})",
                        evidence=evidence | {"infrequent_not_shown": len(rest)},
                        suggestion=suggestion)
            return
        run.finding(f"mysql.performance.{what}", Severity.INFO,
                    f"{len(rest)} {title}, each run too rarely or too cheaply to matter "
                    f"(fewer than {weigh.min_calls:g} calls, or under "
                    f"{weigh.rows_per_s:g} rows/s and {weigh.share_pct:g}% of the time)",
                    evidence=evidence, suggestion=suggestion)

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
