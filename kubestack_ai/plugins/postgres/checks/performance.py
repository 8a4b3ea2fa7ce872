"""Performance: long-running queries and transactions, lock waits with the blocking
chain, deadlocks, rollbacks and temporary files as rates, the cache hit ratio of recent
activity, and the top statements of pg_stat_statements."""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from ..client import QueryFailure, quote_ident
from ..constants import NOT_PRELOADED
from .common import backend, ident, lacking, moving_evidence, pct, rate, rows, short, th
from .connection import ACTIVITY_COLS


def queries(run: Run) -> list[tuple[str, str]]:
    long_q = int(th(run, "long_query_seconds"))
    long_x = int(th(run, "long_transaction_seconds"))
    out = [
        ("long_queries", f"SELECT {ACTIVITY_COLS} FROM pg_stat_activity WHERE state = 'active' "
         "AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND query_start <= "
         f"now() - interval '{long_q} seconds' ORDER BY query_start LIMIT 10"),
        ("long_xacts", f"SELECT {ACTIVITY_COLS} FROM pg_stat_activity WHERE xact_start <= "
         f"now() - interval '{long_x} seconds' AND backend_type = 'client backend' AND pid <> "
         "pg_backend_pid() ORDER BY xact_start LIMIT 10"),
        # every backend waiting on a lock, whom it waits for, and on what
        ("lock_waits", f"SELECT {ACTIVITY_COLS}, pg_blocking_pids(a.pid) AS blocked_by, "
         "(SELECT string_agg(DISTINCT l.mode || ' on ' || l.locktype || coalesce(' ' || "
         "l.relation::regclass::text, '') || coalesce(' ' || l.transactionid::text, ''), ', ') "
         "FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) AS waiting_for, "
         "extract(epoch FROM now() - coalesce(a.state_change, a.query_start)) AS wait_s "
         "FROM pg_stat_activity a WHERE a.wait_event_type = 'Lock' ORDER BY a.state_change"),
        ("blockers", f"SELECT {ACTIVITY_COLS} FROM pg_stat_activity WHERE pid IN (SELECT "
         "unnest(pg_blocking_pids(pid)) FROM pg_stat_activity WHERE wait_event_type = 'Lock')"),
    ]
    if ident(run)["pgss"]:
        out.append(("top_statements", "SELECT queryid, userid::regrole::text AS usr, "
                    "(SELECT datname FROM pg_database WHERE oid = dbid) AS datname, calls, "
                    "round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::"
                    "numeric, 2) AS mean_ms, rows, left(query, 300) AS query FROM "
                    f"{quote_ident(ident(run)['pgss'])}.pg_stat_statements ORDER BY "
                    f"total_exec_time DESC LIMIT {int(th(run, 'top_statements'))}"))
    return out


class PerformanceChecks:
    @category("performance")
    def check_performance(self, run: Run) -> None:
        self._long(run)
        self._locks(run)
        self._rates(run)
        self._statements(run)

    def _long(self, run: Run) -> None:
        qs = [backend(r) for r in rows(run, "long_queries", "performance", "pg_stat_activity") or []]
        run.metric("performance.long_queries", len(qs))
        if qs:
            limit = th(run, "long_query_seconds")
            o = qs[0]
            run.finding("postgres.performance.long_queries", Severity.WARNING,
                        f"{len(qs)} queries running for more than {limit:g} s (oldest: pid "
                        f"{o['pid']}, {o['user']}, {o.get('query_s')} s)",
                        evidence={"queries": qs, "threshold_s": limit},
                        suggestion="EXPLAIN the query; stop it with SELECT pg_cancel_backend("
                        f"{o['pid']}); (action cancel_query with min_seconds={int(limit)}); "
                        f"guard with ALTER ROLE {quote_ident(str(o['user']))} SET "
                        "statement_timeout = '60s';")
        xs = [backend(r) for r in rows(run, "long_xacts", "performance", "pg_stat_activity") or []]
        run.metric("performance.long_transactions", len(xs))
        if xs:
            limit = th(run, "long_transaction_seconds")
            o = xs[0]
            run.finding("postgres.performance.long_transactions", Severity.WARNING,
                        f"{len(xs)} transactions open for more than {limit:g} s (oldest: pid "
                        f"{o['pid']}, {o['user']}, {o.get('xact_s')} s, {o.get('state')})",
                        evidence={"transactions": xs, "threshold_s": limit},
                        suggestion="An old transaction holds locks and stops vacuum from "
                        "removing dead rows: commit it in the application or end it with "
                        f"SELECT pg_terminate_backend({o['pid']});")

    def _locks(self, run: Run) -> None:
        waits = rows(run, "lock_waits", "performance", "pg_stat_activity / pg_locks") or []
        run.metric("performance.lock_waits", len(waits))
        if not waits:
            return
        blockers = {int(r["pid"]): backend(r) for r in
                    rows(run, "blockers", "performance", "pg_stat_activity") or []}
        chain: list[dict[str, Any]] = []
        for w in waits:
            entry = backend(w)
            entry["waiting_for"] = w.get("waiting_for")
            entry["blocked_by"] = [blockers.get(int(p), {"pid": int(p)}) for p in w["blocked_by"] or []]
            chain.append(entry)
        longest = max(float(w["wait_s"] or 0) for w in waits)
        # the root: a blocker that waits for nobody
        waiting = {int(w["pid"]) for w in waits}
        roots = [b for p, b in blockers.items() if p not in waiting] or list(blockers.values())
        root = roots[0] if roots else {"pid": None}
        limit = th(run, "lock_wait_seconds")
        first = chain[0]
        title = (f"{len(chain)} backend(s) wait for a lock (longest {longest:.0f} s): pid "
                 f"{first['pid']} ({first['user']}) waits for "
                 + ", ".join(str(b["pid"]) for b in first["blocked_by"])
                 + f"; root blocker pid {root['pid']} ({root.get('user')}, {root.get('state')})")
        run.finding("postgres.performance.lock_waits",
                    Severity.WARNING if longest >= limit else Severity.INFO, title,
                    evidence={"waits": chain, "root_blockers": roots, "longest_wait_s":
                              round(longest, 1), "threshold_s": limit},
                    suggestion="The root blocker holds the lock in an open transaction "
                    "(state 'idle in transaction': the application forgot to commit). "
                    "Commit it in the application, or end it: SELECT pg_terminate_backend("
                    f"{root['pid']}); guard with SET lock_timeout = '5s'; in the waiters.")

    def _rates(self, run: Run) -> None:
        dl = rate(run, "deadlocks")
        run.metric("performance.deadlocks", int(dl.total))
        if dl.moving and dl.per_second is not None:
            per_min = dl.per_second * 60
            limit = th(run, "deadlocks_per_minute")
            run.finding("postgres.performance.deadlocks",
                        Severity.WARNING if per_min > limit else Severity.INFO,
                        f"{int(dl.delta or 0)} deadlock(s) {dl.window_text()} "
                        f"({per_min:.1f}/min)",
                        evidence={**dl.evidence(), "per_minute": round(per_min, 2),
                                  "threshold_per_minute": limit},
                        suggestion="The server log names both statements of each deadlock "
                        "(log_lock_waits = on helps): take rows and tables in one order in "
                        "every transaction; ALTER SYSTEM SET log_lock_waits = on; SELECT "
                        "pg_reload_conf();")
        cm, rb = rate(run, "xact_commit"), rate(run, "xact_rollback")
        if cm.delta is not None and rb.delta is not None:
            n = cm.delta + rb.delta
            share = pct(rb.delta, n)
            run.metric("performance.rollback_pct", share)
            if n >= th(run, "min_transactions_for_ratios") and share >= th(run, "rollback_warning_pct"):
                run.finding("postgres.performance.rollbacks",
                            Severity.CRITICAL if share >= th(run, "rollback_critical_pct")
                            else Severity.WARNING,
                            f"{share}% of transactions rolled back {rb.window_text()}",
                            evidence={**moving_evidence(cm, rb), "rollback_pct": share},
                            suggestion="Find the failing statements in the server log "
                            "(ALTER SYSTEM SET log_min_error_statement = 'error'; SELECT "
                            "pg_reload_conf();); a driver that rolls back every read-only "
                            "transaction counts here too.")
        tb = rate(run, "temp_bytes")
        if tb.moving and tb.per_second is not None and tb.per_second >= th(run, "temp_bytes_per_second"):
            tf = rate(run, "temp_files")
            run.finding("postgres.performance.temp_files", Severity.WARNING,
                        f"Queries spill to temporary files at {tb.per_second / 1048576:.1f} MiB/s "
                        f"{tb.window_text()}",
                        evidence=moving_evidence(tb, tf),
                        suggestion="Find them with log_temp_files (ALTER SYSTEM SET "
                        "log_temp_files = '10MB'; SELECT pg_reload_conf();) and give them "
                        "memory: ALTER ROLE ... SET work_mem = '64MB';")
        hit, read = rate(run, "blks_hit"), rate(run, "blks_read")
        if hit.delta is not None and read.delta is not None:
            n = hit.delta + read.delta
            ratio = pct(hit.delta, n)
            run.metric("performance.cache_hit_pct", ratio)
            if n >= th(run, "min_blocks_for_cache_ratio") and ratio < th(run, "cache_hit_pct"):
                run.finding("postgres.performance.cache_hit_low", Severity.WARNING,
                            f"Cache hit ratio {ratio}% {hit.window_text()}",
                            evidence={**moving_evidence(hit, read), "cache_hit_pct": ratio,
                                      "threshold_pct": th(run, "cache_hit_pct")},
                            suggestion="The working set does not fit shared_buffers: ALTER "
                            "SYSTEM SET shared_buffers = '<25% of RAM>'; (restart), or find "
                            "the scans reading it (pg_stat_statements shared_blks_read).")

    def _statements(self, run: Run) -> None:
        me = ident(run)
        if not me["pgss"]:
            run.finding("postgres.performance.pg_stat_statements_missing", Severity.INFO,
                        "pg_stat_statements is not installed: no statement statistics",
                        evidence={"database": me["db"],
                                  "shared_preload_libraries": run.data["settings"].get(
                                      "shared_preload_libraries")},
                        suggestion="ALTER SYSTEM SET shared_preload_libraries = "
                        "'pg_stat_statements'; (restart), then in "
                        f"{quote_ident(me['db'])}: CREATE EXTENSION pg_stat_statements;")
            return
        got = run.data["q"].get("top_statements")
        if isinstance(got, QueryFailure) and got.sqlstate == NOT_PRELOADED:
            lacking(run, "performance", "pg_stat_statements", str(got),
                    "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'; (restart)")
            return
        top = rows(run, "top_statements", "performance", "pg_stat_statements") or []
        run.metric("performance.top_statements", [
            {"queryid": r["queryid"], "user": r["usr"], "database": r["datname"],
             "calls": int(r["calls"]), "total_ms": float(r["total_ms"]),
             "mean_ms": float(r["mean_ms"]), "rows": int(r["rows"]),
             "query": short(r["query"])} for r in top])
