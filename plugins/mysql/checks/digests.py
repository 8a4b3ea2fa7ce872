"""The statement digest queries: the slowest statements, full scans, and rows examined
against rows returned, from performance_schema.events_statements_summary_by_digest.

Measured on MariaDB 10.11 with 5,000 digests: one ``ORDER BY ... LIMIT`` scan costs
4-7 ms; window functions over the whole table (one scan, three rankings) 19 ms without
the statement text and 37 ms with it; a UNION of the three 24 ms (temporary table). So
three plain LIMITed selects, sent in the diagnosis's single round trip, with numeric
conditions only: our own statements are dropped in Python (hence the margin).
"""

from __future__ import annotations

from typing import Any

from ...base import Run
from ..constants import SYSTEM_SCHEMAS
from .common import server

TABLE = "performance_schema.events_statements_summary_by_digest"
MARGIN = 20  # extra rows per list: our own statements are dropped in Python

_COLS = ("SCHEMA_NAME AS db, LEFT(DIGEST_TEXT, 512) AS text, COUNT_STAR AS calls, "
         "SUM_TIMER_WAIT AS total_ps, AVG_TIMER_WAIT AS avg_ps, MAX_TIMER_WAIT AS max_ps, "
         "SUM_ROWS_EXAMINED AS examined, SUM_ROWS_SENT AS sent, "
         "SUM_ROWS_AFFECTED AS affected, SUM_NO_INDEX_USED AS no_index, "
         "SUM_NO_GOOD_INDEX_USED AS no_good_index")
LISTS = ("slowest", "no_index", "examined")


def digest_queries(run: Run) -> list[tuple[str, str]]:
    srv = server(run)
    k = int(run.threshold("top_statements", 10)) + MARGIN
    min_rows = int(run.threshold("full_scan_min_rows_per_call", 1000))
    ratio = int(run.threshold("rows_examined_per_sent", 100))
    min_examined = int(run.threshold("rows_examined_min", 100000))
    cols = _COLS + (", QUANTILE_95 AS p95_ps, QUANTILE_99 AS p99_ps"
                    if srv.has_digest_quantiles else "")
    user = ("DIGEST_TEXT IS NOT NULL AND (SCHEMA_NAME IS NULL OR SCHEMA_NAME NOT IN ("
            + ", ".join(f"'{s}'" for s in SYSTEM_SCHEMAS) + "))")
    returned = "GREATEST(SUM_ROWS_SENT + SUM_ROWS_AFFECTED, 1)"
    return [
        ("digest_count", f"SELECT COUNT(*) AS digests_total FROM {TABLE}"),
        ("digests_slowest", f"SELECT {cols} FROM {TABLE} WHERE {user} "
         f"ORDER BY SUM_TIMER_WAIT DESC LIMIT {k}"),
        ("digests_no_index", f"SELECT {cols} FROM {TABLE} WHERE {user} AND SUM_NO_INDEX_USED > 0 "
         f"AND SUM_ROWS_EXAMINED >= COUNT_STAR * {min_rows} "
         f"ORDER BY SUM_ROWS_EXAMINED DESC LIMIT {k}"),
        ("digests_examined", f"SELECT {cols} FROM {TABLE} WHERE {user} "
         f"AND SUM_ROWS_EXAMINED >= {min_examined} AND SUM_ROWS_EXAMINED > {ratio} * {returned} "
         f"ORDER BY SUM_ROWS_EXAMINED / {returned} DESC LIMIT {k}"),
    ]


def own(row: dict[str, Any]) -> bool:
    """Our own catalog reads and SHOW statements are not the workload."""
    low = str(row.get("text") or "").lower()
    return ("performance_schema" in low or "information_schema" in low
            or low.startswith("show "))


def top(run: Run, got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list without our own statements, cut to ``top_statements``."""
    n = int(run.threshold("top_statements", 10))
    return [r for r in got if not own(r)][:n]
