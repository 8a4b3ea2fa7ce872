"""Row lock waits (counters) and the current waits: who blocks whom."""

from __future__ import annotations

from typing import Any

from ...base import Run
from ...models import Severity
from .common import rows, server, short, status, th


class LockChecks:
    def _row_locks(self, run: Run) -> None:
        waits = status(run, "Innodb_row_lock_waits")
        if waits is None:
            return
        total_ms = status(run, "Innodb_row_lock_time", 0) or 0
        avg_ms = status(run, "Innodb_row_lock_time_avg", 0) or 0
        current = status(run, "Innodb_row_lock_current_waits", 0) or 0
        run.metric("innodb.row_lock_waits", int(waits))
        run.metric("innodb.row_lock_time_ms", int(total_ms))
        run.metric("innodb.row_lock_time_avg_ms", int(avg_ms))
        run.metric("innodb.row_lock_current_waits", int(current))
        limit = th(run, "row_lock_time_avg_ms")
        if waits > 0 and avg_ms > limit:
            run.finding("mysql.innodb.row_lock_time_high", Severity.WARNING,
                        f"Row lock waits average {int(avg_ms)} ms ({int(waits)} waits since start)",
                        evidence={"row_lock_waits": int(waits), "row_lock_time_ms": int(total_ms),
                                  "row_lock_time_avg_ms": int(avg_ms), "threshold_ms": limit},
                        suggestion="Shorten the transactions that hold the locks (see "
                        "mysql.innodb.lock_waits and mysql.connection.long_transactions).")

    def _lock_waits(self, run: Run) -> None:
        srv = server(run)
        got = rows(run, "lock_waits", "innodb", srv.lock_waits_source, srv.lock_waits_grant)
        if not got:
            return
        waits: list[dict[str, Any]] = [{"waiting_thread": int(r["waiting_thread"]),
                  "waiting_query": short(r["waiting_query"], 200),
                  "wait_seconds": int(r["wait_seconds"] or 0),
                  "blocking_thread": int(r["blocking_thread"]),
                  "blocking_query": short(r["blocking_query"], 200),
                  "blocking_trx_age_s": int(r["blocking_trx_age"] or 0)} for r in got]
        longest = max(int(w["wait_seconds"]) for w in waits)
        limit = th(run, "lock_wait_seconds")
        run.finding("mysql.innodb.lock_waits",
                    Severity.WARNING if longest >= limit else Severity.INFO,
                    f"{len(waits)} transactions wait for row locks (longest {longest} s); "
                    f"thread {waits[0]['blocking_thread']} blocks thread "
                    f"{waits[0]['waiting_thread']}",
                    evidence={"waits": waits, "threshold_s": limit, "source": srv.lock_waits_source},
                    suggestion="The blocking thread holds an open transaction (blocking_query "
                    "None means it is idle inside it): commit it in the application or KILL "
                    "<blocking_thread>.")
