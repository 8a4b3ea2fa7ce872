"""The statement digest queries: the slowest statements, full scans, and rows examined
against rows returned, from performance_schema.events_statements_summary_by_digest.

Measured on MariaDB 10.11 with 5,000 digests: one ``ORDER BY ... LIMIT`` scan costs
4-7 ms; window functions over the whole table (one scan, three rankings) 19 ms without
the statement text and 37 ms with it; a UNION of three 24 ms (temporary table). So
plain LIMITed selects, sent in the diagnosis's single round trip, with numeric
conditions only: our own statements are dropped in Python (hence the margin). The full
scan and rows-examined lists share one scan: the rows either flags (few on a healthy
server) come back, ordered by rows examined, and Python splits and orders them.
"""

from __future__ import annotations

from typing import Any

from ...base import Run
from ..constants import SYSTEM_SCHEMAS
from .common import server, th

TABLE = "performance_schema.events_statements_summary_by_digest"
MARGIN = 20  # extra rows per list: our own statements are dropped in Python
FLAGGED = 200  # at most this many full-scan / rows-examined candidates

_COLS = ("SCHEMA_NAME AS db, LEFT(DIGEST_TEXT, 512) AS text, COUNT_STAR AS calls, "
         "SUM_TIMER_WAIT AS total_ps, AVG_TIMER_WAIT AS avg_ps, MAX_TIMER_WAIT AS max_ps, "
         "SUM_ROWS_EXAMINED AS examined, SUM_ROWS_SENT AS sent, "
         "SUM_ROWS_AFFECTED AS affected, SUM_NO_INDEX_USED AS no_index, "
         "SUM_NO_GOOD_INDEX_USED AS no_good_index, FIRST_SEEN AS first_seen")


def digest_queries(run: Run) -> list[tuple[str, str]]:
    srv = server(run)
    k = int(th(run, "top_statements")) + MARGIN
    min_rows = int(th(run, "full_scan_min_rows_per_call"))
    ratio = int(th(run, "rows_examined_per_sent"))
    min_examined = int(th(run, "rows_examined_min"))
    cols = _COLS + (", QUANTILE_95 AS p95_ps, QUANTILE_99 AS p99_ps"
                    if srv.has_digest_quantiles else "")
    user = ("DIGEST_TEXT IS NOT NULL AND (SCHEMA_NAME IS NULL OR SCHEMA_NAME NOT IN ("
            + ", ".join(f"'{s}'" for s in SYSTEM_SCHEMAS) + "))")
    returned = "GREATEST(SUM_ROWS_SENT + SUM_ROWS_AFFECTED, 1)"
    scan = f"(SUM_NO_INDEX_USED > 0 AND SUM_ROWS_EXAMINED >= COUNT_STAR * {min_rows})"
    exam = f"(SUM_ROWS_EXAMINED >= {min_examined} AND SUM_ROWS_EXAMINED > {ratio} * {returned})"
    return [
        ("digest_count", f"SELECT COUNT(*) AS digests_total, COALESCE(SUM(SUM_TIMER_WAIT), 0) "
         f"AS total_ps FROM {TABLE}"),
        ("digests_slowest", f"SELECT {cols} FROM {TABLE} WHERE {user} "
         f"ORDER BY SUM_TIMER_WAIT DESC LIMIT {k}"),
        ("digests_flagged", f"SELECT {cols}, {scan} AS is_scan, {exam} AS is_exam "
         f"FROM {TABLE} WHERE {user} AND ({scan} OR {exam}) "
         f"ORDER BY SUM_ROWS_EXAMINED DESC LIMIT {FLAGGED}"),
    ]


def own(row: dict[str, Any]) -> bool:
    """Our own catalog reads and SHOW statements are not the workload."""
    low = str(row.get("text") or "").lower()
    return ("performance_schema" in low or "information_schema" in low
            or low.startswith("show "))


# Statements of dump, backup and checksum tools: read everything once, on purpose.
# mysqldump / mariadb-dump / mydumper send SELECT /*!40001 SQL_NO_CACHE */ * FROM t;
# pt-table-checksum checksums chunks with BIT_XOR(CRC32(...)); backup tools lock and flush.
TOOL_MARKERS = ("sql_no_cache", "bit_xor ( cast ( crc32", "bit_xor(cast(crc32",
                "flush tables with read lock", "flush no_write_to_binlog", "backup stage",
                "`percona` . `checksums`", "`percona`.`checksums`")


def tool(text: str | None) -> bool:
    """A dump, backup or checksum tool's statement (TOOL_MARKERS)."""
    low = " ".join(str(text or "").lower().split())
    return any(m in low for m in TOOL_MARKERS)


def lists(run: Run, slowest: list[dict[str, Any]], flagged: list[dict[str, Any]]
          ) -> dict[str, list[dict[str, Any]]]:
    """The three top lists, our own statements removed, cut to ``top_statements``."""
    n = int(th(run, "top_statements"))
    flagged = [r for r in flagged if not own(r)]
    examined = sorted((r for r in flagged if r["is_exam"]), key=lambda r: -int(r["examined"])
                      / max(int(r["sent"] or 0) + int(r["affected"] or 0), 1))
    return {"slowest": [r for r in slowest if not own(r)][:n],
            "no_index": [r for r in flagged if r["is_scan"]][:n],
            "examined": examined[:n]}
