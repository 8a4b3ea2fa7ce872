"""Replication: both threads, lag and its trend, last errors, relay log space, a
writable replica."""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from ..server import normalise_replica
from .common import growing, on, rows, series, server, short, th, var


def queries(run: Run) -> list[tuple[str, str]]:
    return [("replica_status", server(run).replica_status_sql)]


def _yes(v: object) -> bool:
    return str(v or "").lower() == "yes"


class ReplicationChecks:
    @category("replication")
    def check_replication(self, run: Run) -> None:
        srv = server(run)
        got = rows(run, "replica_status", "replication",
                   f"replica status ({srv.replica_status_sql})",
                   srv.grant(srv.replication_privilege))
        if got is None:
            return
        run.metric("replication.channels", len(got))
        run.metric("replication.role", "replica" if got else
                   ("source" if on(run, "log_bin") else "standalone"))
        if not got:
            return
        worst_lag: float | None = None
        for raw in got:
            r = normalise_replica(raw)
            worst_lag = self._channel(run, r, worst_lag)
        if worst_lag is not None:
            run.metric("replication.seconds_behind", worst_lag)
            self._lag(run, worst_lag)
        self._read_only(run)

    def _channel(self, run: Run, r: dict[str, Any], worst_lag: float | None) -> float | None:
        channel = r["channel"] or ""
        ev = {"channel": channel, "source": f"{r['source_host']}:{r['source_port']}",
              "io_running": r["io_running"], "sql_running": r["sql_running"],
              "columns": r["column_names"]}
        io_ok, sql_ok = _yes(r["io_running"]), _yes(r["sql_running"])
        label = f" (channel {channel!r})" if channel else ""
        if r["last_io_errno"]:
            ev.update(last_io_errno=int(r["last_io_errno"]), last_io_error=short(r["last_io_error"]))
        if r["last_sql_errno"]:
            ev.update(last_sql_errno=int(r["last_sql_errno"]),
                      last_sql_error=short(r["last_sql_error"]))
        errors = "; ".join(x for x in (
            f"SQL error {r['last_sql_errno']}: {short(r['last_sql_error'], 200)}"
            if r["last_sql_errno"] else "",
            f"IO error {r['last_io_errno']}: {short(r['last_io_error'], 200)}"
            if r["last_io_errno"] else "") if x)
        if not io_ok and not sql_ok:
            run.finding("mysql.replication.stopped", Severity.CRITICAL,
                        f"Both replication threads are stopped{label}"
                        + (f": {errors}" if errors else ""), evidence=ev,
                        suggestion=_fix(r, both=True))
        elif not sql_ok:
            run.finding("mysql.replication.sql_thread_stopped", Severity.CRITICAL
                        if r["last_sql_errno"] else Severity.WARNING,
                        f"Replication SQL thread stopped{label}"
                        + (f": {errors}" if errors else ""), evidence=ev, suggestion=_fix(r))
        elif not io_ok:
            run.finding("mysql.replication.io_thread_stopped", Severity.CRITICAL
                        if r["last_io_errno"] else Severity.WARNING,
                        f"Replication IO thread not running{label}"
                        + (f": {errors}" if errors else ""), evidence=ev, suggestion=_fix(r))
        elif errors:
            run.finding("mysql.replication.last_error", Severity.INFO,
                        f"Replication threads run but an error is recorded{label}: {errors}",
                        evidence=ev, suggestion="Check that it no longer happens; "
                        "RESET REPLICA/SLAVE clears it once understood.")
        space = r["relay_log_space"]
        if space is not None:
            mb = int(space) / 1048576
            run.metric("replication.relay_log_space_bytes", int(space))
            limit = th(run, "relay_log_space_warning_mb")
            if mb > limit:
                run.finding("mysql.replication.relay_log_space", Severity.WARNING,
                            f"Relay logs take {mb:.0f} MB{label}",
                            evidence={**ev, "relay_log_space_mb": round(mb, 1),
                                      "threshold_mb": limit},
                            suggestion="The SQL thread applies slower than the IO thread "
                            "fetches: check lag, replica_parallel_workers, disk space; "
                            "relay_log_space_limit caps it.")
        lag = r["seconds_behind"]
        if lag is not None:
            lag = float(lag)
            worst_lag = lag if worst_lag is None else max(worst_lag, lag)
        return worst_lag

    def _lag(self, run: Run, lag: float) -> None:
        warn = th(run, "replication_lag_warning_s")
        crit = th(run, "replication_lag_critical_s")
        points = series(run, "replication.seconds_behind", lag)
        rising = growing(points)
        ev = {"seconds_behind": lag, "warning_s": warn, "critical_s": crit,
              "growing": rising, "history": [v for _, v in points[-6:]]}
        # the mysqld_exporter mixin pages on lag > 30 s that keeps growing
        if lag > crit or (lag > warn and rising):
            sev = Severity.CRITICAL
        elif lag > warn:
            sev = Severity.WARNING
        else:
            return
        run.finding("mysql.replication.lag", sev,
                    f"Replica is {lag:.0f} s behind its source"
                    + (" and the lag grows across runs" if rising else ""),
                    evidence=ev,
                    suggestion="Look for long transactions on the source, a saturated "
                    "replica disk, or single-threaded apply (replica_parallel_workers / "
                    "slave_parallel_threads).")

    def _read_only(self, run: Run) -> None:
        if on(run, "read_only"):
            return
        run.finding("mysql.replication.replica_writable", Severity.WARNING,
                    "Replica accepts writes (read_only=OFF)",
                    evidence={"read_only": var(run, "read_only"),
                              "super_read_only": var(run, "super_read_only")},
                    suggestion="SET GLOBAL read_only=ON (and super_read_only=ON on MySQL), "
                    "and read_only=ON in my.cnf: writes on a replica diverge it "
                    "from its source.")


def _fix(r: dict[str, Any], both: bool = False) -> str:
    if r["last_sql_errno"]:
        return ("Fix the conflicting row or statement named in the error (compare the row "
                "with the source), then START REPLICA (START SLAVE on MariaDB/MySQL < 8.0.22). "
                "Skipping events (sql_slave_skip_counter) loses data: re-sync if unsure.")
    if r["last_io_errno"]:
        return ("Fix the connection to the source named in the error (network, replication "
                "user's password, binlog purged on the source), then START REPLICA.")
    return "START REPLICA (START SLAVE on MariaDB/MySQL < 8.0.22) if it was stopped by hand."
