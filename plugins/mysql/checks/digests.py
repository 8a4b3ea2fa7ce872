"""The statement digest query: the slowest statements, full scans and rows examined
against rows returned, read in one scan of
performance_schema.events_statements_summary_by_digest.

A scan of that table costs about a millisecond per thousand digests (the server renders
each row), so the three top lists and the digest count come from one scan with window
functions (MariaDB 10.2+, MySQL 8.0); older servers get three LIMITed selects.
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


def digest_query(run: Run) -> tuple[str, str]:
    srv = server(run)
    k = int(run.threshold("top_statements", 10)) + MARGIN
    min_rows = int(run.threshold("full_scan_min_rows_per_call", 1000))
    ratio = int(run.threshold("rows_examined_per_sent", 100))
    min_examined = int(run.threshold("rows_examined_min", 100000))
    cols = _COLS + (", QUANTILE_95 AS p95_ps, QUANTILE_99 AS p99_ps"
                    if srv.has_digest_quantiles else "")
    user = ("(SCHEMA_NAME IS NULL OR SCHEMA_NAME NOT IN ("
            + ", ".join(f"'{s}'" for s in SYSTEM_SCHEMAS) + "))")
    scan = f"(SUM_NO_INDEX_USED > 0 AND SUM_ROWS_EXAMINED >= COUNT_STAR * {min_rows})"
    returned = "GREATEST(SUM_ROWS_SENT + SUM_ROWS_AFFECTED, 1)"
    exam = (f"(SUM_ROWS_EXAMINED >= {min_examined} AND "
            f"SUM_ROWS_EXAMINED > {ratio} * {returned})")
    if srv.mariadb and srv.version >= (10, 2, 0) or not srv.mariadb and srv.version >= (8, 0, 0):
        return ("digests", (
            f"SELECT * FROM (SELECT {cols}, {user} AS is_user, {scan} AS is_scan, "
            f"{exam} AS is_exam, COUNT(*) OVER () AS digests_total, "
            f"ROW_NUMBER() OVER (ORDER BY {user} DESC, SUM_TIMER_WAIT DESC) AS r_slow, "
            f"ROW_NUMBER() OVER (ORDER BY ({user} AND {scan}) DESC, SUM_ROWS_EXAMINED DESC) "
            "AS r_scan, "
            f"ROW_NUMBER() OVER (ORDER BY ({user} AND {exam}) DESC, "
            f"SUM_ROWS_EXAMINED / {returned} DESC) AS r_exam "
            f"FROM {TABLE} WHERE DIGEST_TEXT IS NOT NULL) d "
            f"WHERE r_slow <= {k} OR (is_scan AND r_scan <= {k}) "
            f"OR (is_exam AND r_exam <= {k})"))
    # no window functions (MySQL 5.7): one LIMITed select per list
    flags = f"{user} AS is_user, {scan} AS is_scan, {exam} AS is_exam"
    return ("digests", (
        f"(SELECT {cols}, {flags}, 1 AS r_slow, 0 AS r_scan, 0 AS r_exam FROM {TABLE} "
        f"WHERE DIGEST_TEXT IS NOT NULL AND {user} ORDER BY SUM_TIMER_WAIT DESC LIMIT {k}) "
        f"UNION ALL (SELECT {cols}, {flags}, 0, 1, 0 FROM {TABLE} WHERE {user} AND {scan} "
        f"ORDER BY SUM_ROWS_EXAMINED DESC LIMIT {k}) "
        f"UNION ALL (SELECT {cols}, {flags}, 0, 0, 1 FROM {TABLE} WHERE {user} AND {exam} "
        f"ORDER BY SUM_ROWS_EXAMINED / {returned} DESC LIMIT {k})"))


def count_query(run: Run) -> tuple[str, str] | None:
    srv = server(run)
    if srv.mariadb and srv.version >= (10, 2, 0) or not srv.mariadb and srv.version >= (8, 0, 0):
        return None  # digests_total comes with the digest query
    return ("digest_count", f"SELECT COUNT(*) AS digests_total FROM {TABLE}")


def own(row: dict[str, Any]) -> bool:
    """Our own catalog reads and SHOW statements are not the workload."""
    text = str(row.get("text") or "")
    low = text.lower()
    return (row.get("db") in SYSTEM_SCHEMAS or "performance_schema" in low
            or "information_schema" in low or low.startswith("show "))


def lists(run: Run, got: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Split the rows into the three top lists, our own statements removed, best first."""
    n = int(run.threshold("top_statements", 10))
    keep = [r for r in got if r.get("is_user") and not own(r)]
    out: dict[str, list[dict[str, Any]]] = {}
    for name, rank, flag in (("slowest", "r_slow", None), ("no_index", "r_scan", "is_scan"),
                             ("examined", "r_exam", "is_exam")):
        chosen = [r for r in keep if r[rank] and (flag is None or r[flag])]
        if name == "slowest":
            chosen.sort(key=lambda r: -int(r["total_ps"] or 0))
        elif name == "no_index":
            chosen.sort(key=lambda r: -int(r["examined"] or 0))
        else:
            chosen.sort(key=lambda r: -int(r["examined"] or 0) / max(
                int(r["sent"] or 0) + int(r["affected"] or 0), 1))
        out[name] = chosen[:n]
    return out
