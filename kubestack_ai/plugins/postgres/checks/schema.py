"""Schema of the diagnosed database: invalid indexes, duplicate and redundant indexes
(covered by another of the same method, predicate and expressions: PgHero's rule), unused
large indexes with the time since the statistics were reset, tables without a primary
key, foreign keys without an index on the referencing side."""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from ..client import qualified, quote_ident
from .common import SYSTEM_SCHEMAS, age_text, per_database, rows, th

_NOT_SYSTEM = (f"n.nspname NOT IN {SYSTEM_SCHEMAS} AND n.nspname !~ '^pg_toast' "
               "AND n.nspname !~ '^pg_temp'")


def queries(run: Run) -> list[tuple[str, str]]:
    return [
        ("indexes", "SELECT n.nspname AS schema, t.relname AS tbl, c.relname AS idx, am.amname "
         "AS am, i.indkey::text AS keys, i.indnkeyatts AS nkeys, i.indclass::text AS opclasses, "
         "i.indoption::text AS options, i.indcollation::text AS collations, i.indisunique AS "
         "is_unique, i.indisprimary AS is_primary, i.indisvalid AS is_valid, "
         # pg_get_expr opens the table to name its columns: only where there is an expression
         "CASE WHEN i.indexprs IS NULL THEN '' ELSE pg_get_expr(i.indexprs, i.indrelid) END AS "
         "exprs, CASE WHEN i.indpred IS NULL THEN '' ELSE pg_get_expr(i.indpred, i.indrelid) END "
         "AS pred, c.relpages::bigint * current_setting('block_size')::bigint AS size, "
         "coalesce(s.idx_scan, 0) AS scans, "
         "k.conindid IS NOT NULL AS constraint_backed FROM pg_index i JOIN pg_class c ON c.oid = "
         "i.indexrelid JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = "
         "t.relnamespace JOIN pg_am am ON am.oid = c.relam LEFT JOIN pg_stat_user_indexes s "
         # one hash join, not a scan of pg_constraint per index (it has no index on conindid)
         "ON s.indexrelid = i.indexrelid LEFT JOIN (SELECT DISTINCT conindid FROM pg_constraint "
         "WHERE contype IN ('p', 'u', 'x')) k ON k.conindid = c.oid "
         f"WHERE {_NOT_SYSTEM}"),
        ("no_pk", "SELECT n.nspname AS schema, c.relname AS tbl, c.reltuples::bigint AS est_rows "
         "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN "
         "('r', 'p') AND NOT c.relispartition AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE "
         f"i.indrelid = c.oid AND i.indisprimary) AND {_NOT_SYSTEM} ORDER BY 1, 2"),
        ("fks", "SELECT n.nspname AS schema, t.relname AS tbl, k.conname, k.conkey::text AS "
         "conkey, k.confrelid::regclass::text AS referenced, t.reltuples::bigint AS est_rows, "
         "(SELECT array_agg(a.attname ORDER BY x.ord) FROM unnest(k.conkey) WITH ORDINALITY "
         "x(attnum, ord) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.attnum) "
         "AS cols FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace "
         f"n ON n.oid = t.relnamespace WHERE k.contype = 'f' AND {_NOT_SYSTEM}"),
        ("stats_age", "SELECT extract(epoch FROM now() - coalesce(stats_reset, "
         "pg_postmaster_start_time())) AS s, stats_reset FROM pg_stat_database WHERE datname = "
         "current_database()"),
    ]


def _keys(r: dict[str, Any]) -> list[str]:
    return list(str(r["keys"]).split())[: int(r["nkeys"])]


def _covers(big: dict[str, Any], small: dict[str, Any]) -> bool:
    """``small`` is redundant next to ``big``: same table, method, expressions and
    predicate, and its key columns (with their operator classes and options) are a
    leading part of ``big``'s. A unique index is only covered by an identical one."""
    if (big["schema"], big["tbl"], big["am"], big["exprs"], big["pred"]) != (
            small["schema"], small["tbl"], small["am"], small["exprs"], small["pred"]):
        return False
    ks, kb = _keys(small), _keys(big)
    n = len(ks)
    if n > len(kb) or kb[:n] != ks:
        return False
    for col in ("opclasses", "options", "collations"):
        if big[col].split()[:n] != small[col].split()[:n]:
            return False
    if small["is_unique"]:
        return bool(big["is_unique"]) and n == len(kb)
    return True


class SchemaChecks:
    @category("schema")
    def check_schema(self, run: Run) -> None:
        per_database(run, lambda: self._schema(run))

    def _schema(self, run: Run) -> None:
        idx = rows(run, "indexes", "schema", "pg_index") or []
        cap = int(th(run, "schema_max_listed"))
        self._invalid(run, idx, cap)
        self._duplicates(run, idx, cap)
        self._unused(run, idx, cap)
        self._no_pk(run, cap)
        self._fks(run, idx, cap)

    def _invalid(self, run: Run, idx: list[dict[str, Any]], cap: int) -> None:
        bad: list[dict[str, Any]] = [
            {"index": f"{r['schema']}.{r['idx']}", "table": f"{r['schema']}.{r['tbl']}",
                "size_bytes": int(r["size"]),
                "statement": f"REINDEX INDEX CONCURRENTLY {qualified(r['schema'], r['idx'])};"}
               for r in idx if not r["is_valid"]]
        run.metric("schema.invalid_indexes", len(bad))
        if bad:
            run.finding("postgres.schema.invalid_index", Severity.WARNING,
                        f"{len(bad)} invalid index(es) (a failed CREATE INDEX CONCURRENTLY): "
                        + ", ".join(b["index"] for b in bad[:5]),
                        evidence={"indexes": bad[:cap]},
                        suggestion="They cost writes and serve no read: rebuild "
                        + " ".join(b["statement"] for b in bad[:5])
                        + " (action reindex_concurrently) or DROP INDEX CONCURRENTLY them.")

    def _duplicates(self, run: Run, idx: list[dict[str, Any]], cap: int) -> None:
        by_table: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in idx:
            if r["is_valid"]:
                by_table.setdefault((r["schema"], r["tbl"]), []).append(r)
        dups: list[dict[str, Any]] = []
        for group in by_table.values():
            if len(group) < 2:
                continue
            seen: set[str] = set()
            for small in group:
                if small["constraint_backed"] or small["idx"] in seen:
                    continue
                for big in group:
                    if big is small or big["idx"] in seen or not _covers(big, small):
                        continue
                    if _keys(big) == _keys(small) and _covers(small, big) and small["idx"] < big["idx"] \
                            and not big["constraint_backed"]:
                        continue  # identical twins: report the later-named one only
                    seen.add(small["idx"])
                    dups.append({"index": f"{small['schema']}.{small['idx']}",
                                 "covered_by": f"{big['schema']}.{big['idx']}",
                                 "table": f"{small['schema']}.{small['tbl']}",
                                 "size_bytes": int(small["size"]),
                                 "statement": "DROP INDEX CONCURRENTLY "
                                 f"{qualified(small['schema'], small['idx'])};"})
                    break
        run.metric("schema.duplicate_indexes", len(dups))
        if dups:
            run.finding("postgres.schema.duplicate_index", Severity.WARNING,
                        f"{len(dups)} index(es) covered by another: "
                        + ", ".join(f"{d['index']} (by {d['covered_by']})" for d in dups[:5]),
                        evidence={"indexes": dups[:cap]},
                        suggestion=" ".join(d["statement"] for d in dups[:5]))

    def _unused(self, run: Run, idx: list[dict[str, Any]], cap: int) -> None:
        st = rows(run, "stats_age", "schema", "pg_stat_database") or []
        stats_s = float(st[0]["s"]) if st and st[0]["s"] is not None else None
        max_scans, min_size = th(run, "unused_index_scans"), th(run, "unused_index_min_bytes")
        unused: list[dict[str, Any]] = [
            {"index": f"{r['schema']}.{r['idx']}", "table": f"{r['schema']}.{r['tbl']}",
                   "scans": int(r["scans"]), "size_bytes": int(r["size"]),
                   "statement": f"DROP INDEX CONCURRENTLY {qualified(r['schema'], r['idx'])};"}
                  for r in idx if r["is_valid"] and not r["constraint_backed"]
                  and int(r["scans"]) <= max_scans and int(r["size"]) >= min_size]
        if unused:
            unused.sort(key=lambda u: -u["size_bytes"])
            run.finding("postgres.schema.unused_index", Severity.INFO,
                        f"{len(unused)} large index(es) scanned at most {max_scans:g} times in "
                        f"{age_text(stats_s)} of statistics: "
                        + ", ".join(u["index"] for u in unused[:5]),
                        evidence={"indexes": unused[:cap], "stats_age": age_text(stats_s),
                                  "stats_reset": st[0]["stats_reset"].isoformat()
                                  if st and st[0]["stats_reset"] else None},
                        suggestion="If no standby reads through them either (their scans are "
                        "counted there): " + " ".join(u["statement"] for u in unused[:5]))

    def _no_pk(self, run: Run, cap: int) -> None:
        got = rows(run, "no_pk", "schema", "pg_class") or []
        run.metric("schema.tables_without_pk", len(got))
        if got:
            ts: list[dict[str, Any]] = [
                {"table": f"{r['schema']}.{r['tbl']}",
                 "estimated_rows": max(int(r["est_rows"]), 0)}
                  for r in got]
            first = got[0]
            run.finding("postgres.schema.no_primary_key", Severity.INFO,
                        f"{len(ts)} table(s) without a primary key: "
                        + ", ".join(t["table"] for t in ts[:5]),
                        evidence={"tables": ts[:cap]},
                        suggestion="Logical replication cannot replicate their UPDATEs and "
                        "DELETEs, and duplicates creep in: ALTER TABLE "
                        f"{qualified(first['schema'], first['tbl'])} ADD PRIMARY KEY (<columns>); "
                        f"or ALTER TABLE {qualified(first['schema'], first['tbl'])} ADD COLUMN id "
                        "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;")

    def _fks(self, run: Run, idx: list[dict[str, Any]], cap: int) -> None:
        got = rows(run, "fks", "schema", "pg_constraint") or []
        leading: dict[tuple[str, str], list[list[str]]] = {}
        for r in idx:
            if r["is_valid"] and not r["pred"]:
                leading.setdefault((r["schema"], r["tbl"]), []).append(_keys(r))
        missing: list[dict[str, Any]] = []
        for r in got:
            cols = r["conkey"].strip("{}").split(",")
            n = len(cols)
            if any(sorted(k[:n]) == sorted(cols) for k in leading.get((r["schema"], r["tbl"]), [])):
                continue
            if int(r["est_rows"]) < th(run, "fk_index_min_rows"):
                continue
            names = list(r["cols"] or [])
            missing.append({"table": f"{r['schema']}.{r['tbl']}", "constraint": r["conname"],
                            "columns": names, "references": r["referenced"],
                            "estimated_rows": int(r["est_rows"]),
                            "statement": f"CREATE INDEX CONCURRENTLY ON {qualified(r['schema'], r['tbl'])} "
                            f"({', '.join(quote_ident(c) for c in names)});"})
        run.metric("schema.fks_without_index", len(missing))
        if missing:
            run.finding("postgres.schema.fk_without_index", Severity.WARNING,
                        f"{len(missing)} foreign key(s) without an index on the referencing "
                        "side: " + ", ".join(f"{m['table']} ({m['constraint']})" for m in missing[:5]),
                        evidence={"foreign_keys": missing[:cap],
                                  "min_rows": th(run, "fk_index_min_rows")},
                        suggestion="A DELETE or key UPDATE on the referenced table scans the "
                        "whole referencing one, under lock: "
                        + " ".join(m["statement"] for m in missing[:5]))
