"""Performance: slowest statements (performance_schema digests), full table scans, rows
examined against rows sent, query time percentiles, slow log, temporary tables on disk,
sort merge passes, joins without indexes, table cache, open files, table locks, stalls."""

from __future__ import annotations

from ...base import Run, category
from ...models import Severity
from . import digests
from .common import on, rows, server, status, var, var_num
from .counters import CounterChecks
from .statements import StatementChecks, percentile_queries


def queries(run: Run) -> list[tuple[str, str]]:
    out = percentile_queries(run)
    if not on(run, "performance_schema"):
        return out
    out.append(("ps_consumers", "SELECT NAME AS name, ENABLED AS enabled FROM "
                "performance_schema.setup_consumers WHERE NAME IN ('global_instrumentation', "
                "'thread_instrumentation', 'statements_digest')"))
    return out + digests.digest_queries(run)


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
        total = rows(run, "digest_count", "performance", digests.TABLE, grant)
        if total is None:
            return
        count = int(total[0]["digests_total"] or 0)
        run.metric("performance.digests", count)
        run.metric("performance.digests_available", True)
        lost = status(run, "Performance_schema_digest_lost", 0) or 0
        if lost > 0:
            run.finding("mysql.performance.digests_lost", Severity.INFO,
                        f"{int(lost)} statements were not summarised: the digest table is full",
                        evidence={"digest_lost": int(lost), "digests": count,
                                  "performance_schema_digests_size":
                                  var_num(run, "performance_schema_digests_size")},
                        suggestion="Raise performance_schema_digests_size in my.cnf "
                        "(restart), or TRUNCATE performance_schema."
                        "events_statements_summary_by_digest after reading it.")
        self._digest_findings(run, digests.lists(
            run, rows(run, "digests_slowest", "performance", digests.TABLE, grant) or [],
            rows(run, "digests_flagged", "performance", digests.TABLE, grant) or []),
            float(total[0]["total_ps"] or 0))
