"""Schema: duplicate and redundant indexes (pt-duplicate-key-checker), tables without a
primary key and tables in engines without transactions (mysqltuner --tbstat).

Reads information_schema.TABLES and STATISTICS for the user schemas: on MariaDB and
MySQL 5.7 that opens every table, so a fleet with tens of thousands of tables may want
this category on a slower schedule (``categories:`` in the fleet file).
"""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from .. import indexes
from ..constants import SYSTEM_SCHEMAS
from .common import on, rows, th, var

_USER = "NOT IN (" + ", ".join(f"'{s}'" for s in SYSTEM_SCHEMAS) + ")"


def queries(run: Run) -> list[tuple[str, str]]:
    return [
        ("schema_tables", "SELECT t.TABLE_SCHEMA AS db, t.TABLE_NAME AS tbl, t.ENGINE AS engine, "
         "t.TABLE_ROWS AS n_rows, e.TRANSACTIONS AS trx FROM information_schema.TABLES t "
         "LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE "
         f"WHERE t.TABLE_TYPE = 'BASE TABLE' AND t.TABLE_SCHEMA {_USER} "
         "ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME"),
        ("schema_indexes", "SELECT TABLE_SCHEMA AS db, TABLE_NAME AS tbl, INDEX_NAME AS idx, "
         "NON_UNIQUE AS non_unique, SEQ_IN_INDEX AS seq, COLUMN_NAME AS col, SUB_PART AS "
         "sub_part, INDEX_TYPE AS type, NULLABLE AS nullable FROM information_schema.STATISTICS "
         f"WHERE TABLE_SCHEMA {_USER} ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"),
    ]


def _name(db: str, tbl: str) -> str:
    return f"{indexes.ident(db)}.{indexes.ident(tbl)}"


class SchemaChecks:
    @category("schema")
    def check_schema(self, run: Run) -> None:
        tables = rows(run, "schema_tables", "schema", "information_schema.TABLES")
        stats = rows(run, "schema_indexes", "schema", "information_schema.STATISTICS")
        if tables is None or stats is None:
            return
        limit = int(th(run, "schema_max_listed"))
        engine = {(str(t["db"]), str(t["tbl"])): str(t["engine"] or "") for t in tables}
        run.metric("schema.tables", len(tables))
        self._redundant(run, stats, engine, limit)
        self._no_primary_key(run, tables, stats, limit)
        self._non_transactional(run, tables, limit)

    def _redundant(self, run: Run, stats: list[dict[str, Any]],
                   engine: dict[tuple[str, str], str], limit: int) -> None:
        found: list[dict[str, Any]] = []
        for key, ixs in indexes.by_table(stats).items():
            found += indexes.redundant(ixs, innodb=engine.get(key, "").lower() == "innodb")
        run.metric("schema.redundant_indexes", len(found))
        if not found:
            return
        shown = found[:limit]
        run.finding("mysql.schema.redundant_indexes", Severity.WARNING,
                    f"{len(found)} duplicate or redundant indexes: "
                    + ", ".join(f"{f['table']}.{f['index'].split(' ')[0]}" for f in shown[:5])
                    + (" ..." if len(found) > 5 else ""),
                    evidence={"indexes": shown, "total": len(found),
                              "rules": "pt-duplicate-key-checker"},
                    suggestion=" ".join(f["fix"] for f in shown) + " Each slows every write and "
                    "takes buffer pool memory without serving a read the other cannot; check "
                    "for index hints (FORCE INDEX) naming it first.")

    def _no_primary_key(self, run: Run, tables: list[dict[str, Any]],
                        stats: list[dict[str, Any]], limit: int) -> None:
        # InnoDB clusters on the first UNIQUE index of NOT NULL columns when there is no
        # primary key, and row-based replication finds rows by it: such a table is fine
        keyed: set[tuple[str, str]] = set()
        nullable: dict[tuple[str, str, str], bool] = {}
        for r in stats:
            k = (str(r["db"]), str(r["tbl"]), str(r["idx"]))
            if not int(r["non_unique"]):
                nullable[k] = nullable.get(k, False) or str(r["nullable"] or "").upper() == "YES"
        for (db, tbl, _), has_null in nullable.items():
            if not has_null:
                keyed.add((db, tbl))
        found = [t for t in tables if (str(t["db"]), str(t["tbl"])) not in keyed]
        run.metric("schema.tables_without_primary_key", len(found))
        if not found:
            return
        row_events = on(run, "log_bin") and (var(run, "binlog_format") or "").upper() != "STATEMENT"
        shown = [{"table": _name(str(t["db"]), str(t["tbl"])), "engine": t["engine"],
                  "rows": int(t["n_rows"] or 0),
                  "fix": f"ALTER TABLE {_name(str(t['db']), str(t['tbl']))} ADD COLUMN "
                         "id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY;"}
                 for t in found[:limit]]
        run.finding("mysql.schema.no_primary_key",
                    Severity.WARNING if row_events else Severity.INFO,
                    f"{len(found)} tables have no primary key: "
                    + ", ".join(s["table"] for s in shown[:5]) + (" ..." if len(found) > 5 else ""),
                    evidence={"tables": shown, "total": len(found), "log_bin": var(run, "log_bin"),
                              "binlog_format": var(run, "binlog_format"),
                              "row_based_events": row_events},
                    suggestion=" ".join(s["fix"] for s in shown) + " Or make an existing "
                    "unique NOT NULL column set the key: ALTER TABLE ... ADD PRIMARY KEY (cols). "
                    "Without one, a replica applying row events scans the table for every "
                    "updated or deleted row, and InnoDB clusters on a hidden row id.")

    def _non_transactional(self, run: Run, tables: list[dict[str, Any]], limit: int) -> None:
        found = [t for t in tables if str(t["trx"] or "").upper() == "NO"]
        run.metric("schema.non_transactional_tables", len(found))
        if not found:
            return
        shown = [{"table": _name(str(t["db"]), str(t["tbl"])), "engine": t["engine"],
                  "rows": int(t["n_rows"] or 0),
                  "fix": f"ALTER TABLE {_name(str(t['db']), str(t['tbl']))} ENGINE=InnoDB;"}
                 for t in found[:limit]]
        engines = sorted({str(t["engine"]) for t in found})
        run.finding("mysql.schema.non_innodb_tables", Severity.WARNING,
                    f"{len(found)} tables use engines without transactions or crash recovery "
                    f"({', '.join(engines)}): " + ", ".join(s["table"] for s in shown[:5])
                    + (" ..." if len(found) > 5 else ""),
                    evidence={"tables": shown, "total": len(found), "engines": engines},
                    suggestion=" ".join(s["fix"] for s in shown) + " MyISAM/Aria lock whole "
                    "tables on writes and can lose or corrupt rows in a crash; MEMORY loses "
                    "everything on restart.")
