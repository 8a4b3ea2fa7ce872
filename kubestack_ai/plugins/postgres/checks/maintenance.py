"""Maintenance: transaction ID and multixact age per database and the tables closest to
wraparound; dead tuples and the last (auto)vacuum/analyze; autovacuum disabled on a
table; dead space (bloat) estimates; sequences close to their maximum or to the maximum
of the column they feed; orphaned prepared transactions."""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from ..client import qualified, quote_ident, quote_literal
from ..constants import TYPE_MAX
from .common import SYSTEM_SCHEMAS, age_text, ident, pct, per_database, rows, setting_num, th

HARD_LIMIT = 2**31 - 1  # transaction IDs: the server stops assigning new ones near 2^31


def queries(run: Run) -> list[tuple[str, str]]:
    dead, dead_pct = int(th(run, "dead_tuples_min")), th(run, "dead_tuples_pct")
    bloat = int(th(run, "bloat_warning_bytes"))
    stale = int(th(run, "analyze_stale_seconds"))
    prep = int(th(run, "prepared_xact_warning_seconds"))
    return [
        ("db_ages", "SELECT datname, age(datfrozenxid) AS xid_age, mxid_age(datminmxid) AS "
         "mxid_age FROM pg_database WHERE datallowconn ORDER BY 2 DESC"),
        ("table_ages", "SELECT n.nspname AS schema, c.relname AS tbl, age(c.relfrozenxid) AS "
         "xid_age, mxid_age(c.relminmxid) AS mxid_age FROM pg_class c JOIN pg_namespace n ON "
         "n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm', 't') ORDER BY 3 DESC LIMIT 5"),
        ("tables", "SELECT s.schemaname AS schema, s.relname AS tbl, s.n_live_tup, s.n_dead_tup, "
         "s.n_mod_since_analyze, s.last_vacuum, s.last_autovacuum, s.last_analyze, "
         "s.last_autoanalyze, extract(epoch FROM now() - greatest(s.last_vacuum, "
         "s.last_autovacuum)) AS vacuum_age_s, extract(epoch FROM now() - greatest("
         "s.last_analyze, s.last_autoanalyze)) AS analyze_age_s, c.relpages::bigint * current_setting("
         "'block_size')::bigint AS size, "
         "c.reloptions::text AS reloptions FROM pg_stat_user_tables s JOIN pg_class c ON "
         f"c.oid = s.relid WHERE (s.n_dead_tup >= {dead} AND s.n_dead_tup >= {dead_pct / 100} "
         "* (s.n_live_tup + s.n_dead_tup)) OR (s.n_mod_since_analyze >= "
         f"{dead} AND s.n_mod_since_analyze >= {dead_pct / 100} * (s.n_live_tup + "
         "s.n_dead_tup) AND coalesce(greatest(s.last_analyze, s.last_autoanalyze), "
         f"'-infinity') < now() - interval '{stale} seconds') OR c.reloptions::text ~ "
         "'autovacuum_enabled=(false|off|no|0)' OR c.relpages::bigint * current_setting("
         "'block_size')::bigint * s.n_dead_tup "
         f"/ nullif(s.n_live_tup + s.n_dead_tup, 0) >= {bloat} ORDER BY s.n_dead_tup DESC "
         "LIMIT 50"),
        ("sequences", "SELECT s.schemaname AS schema, s.sequencename AS seq, s.last_value, "
         "s.max_value, s.min_value, s.increment_by, s.data_type::text AS seq_type, "
         "tn.nspname AS tbl_schema, t.relname AS tbl, a.attname AS col, "
         "format_type(a.atttypid, a.atttypmod) AS col_type FROM pg_sequences s "
         "JOIN pg_namespace n ON n.nspname = s.schemaname JOIN pg_class c ON c.relnamespace = "
         "n.oid AND c.relname = s.sequencename LEFT JOIN pg_depend d ON d.objid = c.oid AND "
         "d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND "
         "d.deptype IN ('a', 'i') LEFT JOIN pg_class t ON t.oid = d.refobjid LEFT JOIN "
         "pg_namespace tn ON tn.oid = t.relnamespace LEFT JOIN pg_attribute a ON a.attrelid = "
         "d.refobjid AND a.attnum = d.refobjsubid WHERE s.last_value IS NOT NULL"),
        # btree indexes large enough to hold the threshold, with their key columns' widths
        # (pg_stats): the estimate is made in _index_bloat
        ("index_bloat", "SELECT n.nspname AS schema, t.relname AS tbl, c.relname AS idx, "
         "c.relpages::bigint AS pages, c.reltuples::bigint AS tuples, i.indnatts AS natts, "
         "current_setting('block_size')::int AS block, (SELECT sum(st.avg_width) FROM "
         "pg_attribute a JOIN pg_stats st ON st.schemaname = n.nspname AND st.tablename = "
         "t.relname AND st.attname = a.attname WHERE a.attrelid = t.oid AND a.attnum = ANY "
         "(i.indkey::int2[])) AS width, (SELECT count(*) FROM pg_attribute a JOIN pg_stats st "
         "ON st.schemaname = n.nspname AND st.tablename = t.relname AND st.attname = a.attname "
         "WHERE a.attrelid = t.oid AND a.attnum = ANY (i.indkey::int2[])) AS n_stats FROM "
         "pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = "
         "i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = "
         "c.relam WHERE am.amname = 'btree' AND i.indexprs IS NULL AND c.relpages::bigint * "
         f"current_setting('block_size')::int >= {bloat} AND n.nspname NOT IN "
         f"{SYSTEM_SCHEMAS} AND n.nspname !~ '^pg_toast' ORDER BY c.relpages DESC LIMIT 200"),
        ("prepared", "SELECT gid, owner, database, prepared, extract(epoch FROM now() - prepared) "
         f"AS age_s FROM pg_prepared_xacts WHERE prepared <= now() - interval '{prep} seconds' "
         "ORDER BY prepared"),
    ]


PER_DATABASE = ("tables", "index_bloat", "sequences")
"""The statements of queries() that read one database's tables (the rest read them all)."""


class MaintenanceChecks:
    @category("maintenance")
    def check_maintenance(self, run: Run) -> None:
        self._wraparound(run)  # every database's age, from any one of them
        per_database(run, lambda: self._per_database(run))
        self._prepared(run)  # every database's prepared transactions
        if run.data["settings"].get("autovacuum") == "off":
            run.finding("postgres.maintenance.autovacuum_off", Severity.CRITICAL,
                        "Autovacuum is off for the whole server",
                        evidence={"autovacuum": "off"},
                        suggestion="ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();")

    def _per_database(self, run: Run) -> None:
        self._tables(run)
        self._index_bloat(run)
        self._sequences(run)

    def _wraparound(self, run: Run) -> None:
        dbs = rows(run, "db_ages", "maintenance", "pg_database") or []
        tables = rows(run, "table_ages", "maintenance", "pg_class") or []
        freeze = setting_num(run, "autovacuum_freeze_max_age") or 200_000_000
        mfreeze = setting_num(run, "autovacuum_multixact_freeze_max_age") or 400_000_000
        run.metric("maintenance.xid_age_max", max((int(d["xid_age"]) for d in dbs), default=0))
        closest: list[dict[str, Any]] = [{"table": f"{t['schema']}.{t['tbl']}", "xid_age": int(t["xid_age"]),
                    "mxid_age": int(t["mxid_age"])} for t in tables]
        for d in dbs:
            for kind, age, limit in (("xid", int(d["xid_age"]), freeze),
                                     ("mxid", int(d["mxid_age"]), mfreeze)):
                share = 100.0 * age / limit if limit else 0.0
                sev = None
                if age >= th(run, "xid_age_critical") or share >= th(run, "freeze_age_critical_pct"):
                    sev = Severity.CRITICAL
                elif age >= th(run, "xid_age_warning") or share >= th(run, "freeze_age_warning_pct"):
                    sev = Severity.WARNING
                if sev is None:
                    continue
                what = "transaction ID" if kind == "xid" else "multixact"
                ev: dict[str, Any] = {"database": d["datname"], f"{kind}_age": age,
                                      "freeze_max_age": int(limit),
                                      "pct_of_freeze_max_age": round(share, 4),
                                      "left_before_hard_limit": HARD_LIMIT - age}
                if d["datname"] == ident(run)["db"]:
                    ev["oldest_tables"] = closest
                run.finding(f"postgres.maintenance.{kind}_wraparound", sev,
                            f"Database {d['datname']}: {what} age {age:,} ({share:.1f}% of "
                            f"autovacuum_{'multixact_' if kind == 'mxid' else ''}freeze_max_age)",
                            evidence=ev,
                            suggestion=f"In {quote_ident(d['datname'])}, freeze the oldest "
                            "tables first: " + " ".join(
                                f"VACUUM (FREEZE, VERBOSE) {qualified(*t['table'].split('.', 1))};"
                                for t in closest[:3]) + " Find what holds the horizon back: "
                            "long transactions, prepared transactions, inactive slots.")

    def _tables(self, run: Run) -> None:
        got = rows(run, "tables", "maintenance", "pg_stat_user_tables") or []
        dead_min, dead_pct = th(run, "dead_tuples_min"), th(run, "dead_tuples_pct")
        bloat_w, bloat_c = th(run, "bloat_warning_bytes"), th(run, "bloat_critical_bytes")
        dead: list[dict[str, Any]] = []
        unanalyzed: list[dict[str, Any]] = []
        stale_s = th(run, "analyze_stale_seconds")
        off: list[dict[str, Any]] = []
        bloated: list[dict[str, Any]] = []
        for r in got:
            name = qualified(r["schema"], r["tbl"])
            live, n_dead = int(r["n_live_tup"]), int(r["n_dead_tup"])
            share = pct(n_dead, live + n_dead)
            last = max((x for x in (r["last_vacuum"], r["last_autovacuum"]) if x), default=None)
            entry: dict[str, Any] = {"table": f"{r['schema']}.{r['tbl']}", "n_dead_tup": n_dead,
                     "n_live_tup": live, "dead_pct": share, "size_bytes": int(r["size"]),
                     "last_vacuum": last.isoformat() if last else None,
                     "since_vacuum": age_text(r["vacuum_age_s"]),
                     "last_analyze": (lambda a: a.isoformat() if a else None)(
                         max((x for x in (r["last_analyze"], r["last_autoanalyze"]) if x),
                             default=None)),
                     "statement": f"VACUUM (ANALYZE, VERBOSE) {name};"}
            if "autovacuum_enabled=" in (r["reloptions"] or "") and any(
                    f"autovacuum_enabled={v}" in r["reloptions"] for v in ("false", "off", "no", "0")):
                off.append({**entry, "reloptions": r["reloptions"],
                            "statement": f"ALTER TABLE {name} RESET (autovacuum_enabled);"})
            if n_dead >= dead_min and share >= dead_pct:
                dead.append(entry)
            mods = int(r["n_mod_since_analyze"])
            if (mods >= dead_min and mods >= dead_pct / 100 * (live + n_dead)
                    and (r["analyze_age_s"] is None or float(r["analyze_age_s"]) >= stale_s)):
                unanalyzed.append({**entry, "n_mod_since_analyze": mods,
                                   "since_analyze": age_text(r["analyze_age_s"]),
                                   "statement": f"ANALYZE (VERBOSE) {name};"})
            waste = int(r["size"]) * n_dead / max(live + n_dead, 1)
            if waste >= bloat_w:
                bloated.append({**entry, "wasted_bytes_estimate": int(waste),
                                "statement": f"VACUUM (VERBOSE) {name}; -- or pg_repack"})
        if dead:
            run.finding("postgres.maintenance.dead_tuples", Severity.WARNING,
                        f"{len(dead)} table(s) with many dead tuples (worst "
                        f"{dead[0]['table']}: {dead[0]['n_dead_tup']:,}, {dead[0]['dead_pct']}%)",
                        evidence={"tables": dead, "threshold_rows": dead_min,
                                  "threshold_pct": dead_pct},
                        suggestion=" ".join(t["statement"] for t in dead[:5]) + " If autovacuum "
                        "runs but cannot remove them, an old transaction or slot holds the "
                        "horizon back.")
        if unanalyzed:
            run.finding("postgres.maintenance.analyze_stale", Severity.INFO,
                        f"{len(unanalyzed)} table(s) changed much since their last analyze "
                        f"(worst {unanalyzed[0]['table']}: {unanalyzed[0]['n_mod_since_analyze']:,} "
                        f"rows changed, analyzed {unanalyzed[0]['since_analyze']} ago)",
                        evidence={"tables": unanalyzed, "threshold_rows": dead_min,
                                  "threshold_s": stale_s},
                        suggestion=" ".join(t["statement"] for t in unanalyzed[:5])
                        + " The planner plans on old statistics until then.")
        if off:
            run.finding("postgres.maintenance.autovacuum_disabled", Severity.WARNING,
                        f"Autovacuum is disabled on {len(off)} table(s): "
                        + ", ".join(t["table"] for t in off[:5]),
                        evidence={"tables": off},
                        suggestion=" ".join(t["statement"] for t in off[:5]))
        if bloated:
            worst = max(t["wasted_bytes_estimate"] for t in bloated)
            run.finding("postgres.maintenance.table_bloat",
                        Severity.CRITICAL if worst >= bloat_c else Severity.WARNING,
                        f"{len(bloated)} table(s) with an estimated {worst / 1024**3:.1f} GiB "
                        "or more of dead space",
                        evidence={"tables": bloated, "estimate": "size x dead / (live + dead)",
                                  "threshold_bytes": bloat_w},
                        suggestion=" ".join(t["statement"] for t in bloated[:5]))

    def _index_bloat(self, run: Run) -> None:
        """The pages a freshly built btree of the same rows would take, against the pages
        it has: tuples of 8 bytes of header plus the key widths (pg_stats), aligned to 8,
        and a 4-byte line pointer each, on pages of the block size less 40 bytes (page
        header and btree special space) filled to 90%, plus the metapage and 1% for inner
        pages. Indexes whose columns have no statistics (never analyzed, or no SELECT on
        the table) are not estimated."""
        got = rows(run, "index_bloat", "maintenance", "pg_stats / pg_class") or []
        warn, crit = th(run, "bloat_warning_bytes"), th(run, "bloat_critical_bytes")
        out: list[dict[str, Any]] = []
        for r in got:
            if r["width"] is None or int(r["n_stats"]) < int(r["natts"]):
                continue
            block = int(r["block"])
            tup = 8 + -(-int(r["width"]) // 8) * 8 + 4
            per_page = max(int((block - 40) * 0.9) // tup, 1)
            expected = int(-(-max(int(r["tuples"]), 0) // per_page) * 1.01) + 1
            wasted = (int(r["pages"]) - expected) * block
            if wasted < warn:
                continue
            name = qualified(r["schema"], r["idx"])
            out.append({"index": f"{r['schema']}.{r['idx']}", "table": f"{r['schema']}.{r['tbl']}",
                        "size_bytes": int(r["pages"]) * block, "expected_bytes": expected * block,
                        "wasted_bytes_estimate": wasted,
                        "statement": f"REINDEX INDEX CONCURRENTLY {name};"})
        if out:
            out.sort(key=lambda x: -x["wasted_bytes_estimate"])
            worst = out[0]
            run.finding("postgres.maintenance.index_bloat",
                        Severity.CRITICAL if worst["wasted_bytes_estimate"] >= crit else Severity.WARNING,
                        f"{len(out)} index(es) larger than a rebuild would make them (worst "
                        f"{worst['index']}: {worst['size_bytes'] / 1048576:.1f} MiB, about "
                        f"{worst['expected_bytes'] / 1048576:.1f} MiB rebuilt)",
                        evidence={"indexes": out[:50], "threshold_bytes": warn,
                                  "estimate": "btree of the same rows at 90% fill (pg_stats widths)"},
                        suggestion=" ".join(x["statement"] for x in out[:5])
                        + " (action reindex_concurrently rebuilds invalid indexes only)")

    def _sequences(self, run: Run) -> None:
        got = rows(run, "sequences", "maintenance", "pg_sequences") or []
        warn, crit = th(run, "sequence_warning_pct"), th(run, "sequence_critical_pct")
        near: list[dict[str, Any]] = []
        for r in got:
            inc = int(r["increment_by"])
            top = int(r["max_value"]) if inc > 0 else -int(r["min_value"])
            col_max = TYPE_MAX.get(str(r["col_type"] or ""))
            limited_by = "sequence"
            if col_max is not None and col_max < top:
                top, limited_by = col_max, f"column {r['tbl']}.{r['col']} ({r['col_type']})"
            used = int(r["last_value"]) if inc > 0 else -int(r["last_value"])
            share = pct(used, top)
            if share < warn:
                continue
            seq = qualified(r["schema"], r["seq"])
            stmts = []
            if r["tbl"] and str(r["col_type"]) in ("integer", "smallint"):
                stmts.append(f"ALTER TABLE {qualified(r['tbl_schema'], r['tbl'])} ALTER COLUMN "
                             f"{quote_ident(r['col'])} TYPE bigint;")
            if r["seq_type"] != "bigint":
                stmts.append(f"ALTER SEQUENCE {seq} AS bigint;")
            fix = " ".join(stmts) or f"ALTER SEQUENCE {seq} CYCLE; -- only if reusing values is safe"
            near.append({"sequence": f"{r['schema']}.{r['seq']}", "last_value": int(r["last_value"]),
                         "max": top, "pct": share, "limited_by": limited_by,
                         "column": f"{r['tbl']}.{r['col']}" if r["tbl"] else None,
                         "statement": fix})
        run.metric("maintenance.sequences_near_max", len(near))
        if near:
            near.sort(key=lambda s: -s["pct"])
            w = near[0]
            run.finding("postgres.maintenance.sequence_near_max",
                        Severity.CRITICAL if w["pct"] >= crit else Severity.WARNING,
                        f"{len(near)} sequence(s) near their maximum (worst {w['sequence']}: "
                        f"{w['pct']}% of {w['limited_by']})",
                        evidence={"sequences": near, "threshold_pct": warn},
                        suggestion=" ".join(s["statement"] for s in near[:5]))

    def _prepared(self, run: Run) -> None:
        got = rows(run, "prepared", "maintenance", "pg_prepared_xacts") or []
        run.metric("maintenance.old_prepared_xacts", len(got))
        if not got:
            return
        xs: list[dict[str, Any]] = [{"gid": r["gid"], "owner": r["owner"], "database": r["database"],
               "prepared": r["prepared"].isoformat(), "age_s": round(float(r["age_s"]), 1)}
              for r in got]
        oldest = max(x["age_s"] for x in xs)
        run.finding("postgres.maintenance.prepared_xacts",
                    Severity.CRITICAL if oldest >= th(run, "prepared_xact_critical_seconds")
                    else Severity.WARNING,
                    f"{len(xs)} prepared transaction(s) left open (oldest {age_text(oldest)}): "
                    "they hold locks and the xmin horizon",
                    evidence={"prepared": xs, "threshold_s": th(run, "prepared_xact_warning_seconds")},
                    suggestion="If the transaction manager has forgotten them: " + "; ".join(
                        f"in {quote_ident(x['database'])}: ROLLBACK PREPARED "
                        f"{quote_literal(x['gid'])};" for x in xs[:5]))
