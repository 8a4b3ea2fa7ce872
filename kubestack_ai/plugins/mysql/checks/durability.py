"""Durability: settings that lose committed transactions in a crash, or fill the disk
with binary logs (pt-variable-advisor's rules, percona-toolkit 3.2.1: sync_binlog,
innodb_flush_log_at_trx_commit-1/-2, innodb_doublewrite, expire_logs_days)."""

from __future__ import annotations

from ...base import Run, category
from ...models import Severity
from .common import on, var, var_num

# innodb_doublewrite values that protect against torn pages: ON everywhere,
# DETECT_AND_RECOVER (MySQL 8.0.30+, = ON), fast (MariaDB 11.x: ON without the extra fsync)
_DOUBLEWRITE_SAFE = ("ON", "1", "DETECT_AND_RECOVER", "FAST")


def queries(run: Run) -> list[tuple[str, str]]:
    return []  # everything comes from the variables prepare() reads


class DurabilityChecks:
    @category("durability")
    def check_durability(self, run: Run) -> None:
        self._flush_log(run)
        self._doublewrite(run)
        if on(run, "log_bin"):
            self._sync_binlog(run)
            self._binlog_expiry(run)
        run.metric("durability.log_bin", on(run, "log_bin"))

    def _flush_log(self, run: Run) -> None:
        v = var_num(run, "innodb_flush_log_at_trx_commit")
        run.metric("durability.innodb_flush_log_at_trx_commit", v)
        if v is None or v == 1:
            return
        lost = ("up to a second of commits on a mysqld crash or an OS crash" if v == 0 else
                "up to a second of commits on an OS crash or power loss (not on a mysqld crash)")
        run.finding("mysql.durability.flush_log_at_trx_commit", Severity.WARNING,
                    f"innodb_flush_log_at_trx_commit={v:g}: a crash loses {lost}",
                    evidence={"innodb_flush_log_at_trx_commit": v, "loses": lost,
                              "rule": "pt-variable-advisor innodb_flush_log_at_trx_commit-1"
                              + (" and -2" if v == 0 else "")},
                    suggestion="SET GLOBAL innodb_flush_log_at_trx_commit=1; and "
                    "innodb_flush_log_at_trx_commit=1 in my.cnf ([mysqld]). Only a replica "
                    "rebuilt from its source after a crash can afford 2 (0 is never better "
                    "than 2).")

    def _doublewrite(self, run: Run) -> None:
        v = var(run, "innodb_doublewrite")
        run.metric("durability.innodb_doublewrite", v)
        if v is None or v.upper() in _DOUBLEWRITE_SAFE:
            return
        run.finding("mysql.durability.doublewrite_off", Severity.WARNING,
                    f"innodb_doublewrite={v}: a crash during a page write can leave a torn, "
                    "unrecoverable page",
                    evidence={"innodb_doublewrite": v, "rule": "pt-variable-advisor "
                              "innodb_doublewrite"},
                    suggestion="Set innodb_doublewrite=ON in my.cnf ([mysqld]) and restart "
                    "(not dynamic before MySQL 8.0.30); leave it off only on a filesystem or "
                    "device with atomic 16 KB writes (ZFS, innodb_use_atomic_writes).")

    def _sync_binlog(self, run: Run) -> None:
        v = var_num(run, "sync_binlog")
        run.metric("durability.sync_binlog", v)
        if v is None or v == 1:
            return
        how = ("the OS decides when the binary log reaches disk" if v == 0
               else f"the binary log is synced every {v:g} commits")
        run.finding("mysql.durability.sync_binlog", Severity.WARNING,
                    f"sync_binlog={v:g} with the binary log on: {how}; an OS crash can lose "
                    "committed transactions from it and break replicas or point-in-time "
                    "recovery",
                    evidence={"sync_binlog": v, "log_bin": var(run, "log_bin"),
                              "rule": "pt-variable-advisor sync_binlog"},
                    suggestion="SET GLOBAL sync_binlog=1; and sync_binlog=1 in my.cnf "
                    "([mysqld]); group commit keeps its cost low on SSDs.")

    def _binlog_expiry(self, run: Run) -> None:
        days = var_num(run, "expire_logs_days") or 0
        secs = var_num(run, "binlog_expire_logs_seconds") or 0
        auto = var(run, "binlog_expire_logs_auto_purge")
        # MySQL 8: binlog_expire_logs_seconds (default 30 days) replaces expire_logs_days,
        # which pt-variable-advisor's rule alone reads; MariaDB 10.6+ keeps both in step
        never = (days == 0 and secs == 0) or (auto is not None and auto.upper() == "OFF")
        run.metric("durability.binlog_expire_seconds", int(secs or days * 86400))
        if not never:
            return
        run.finding("mysql.durability.binlog_never_expires", Severity.WARNING,
                    "Binary logs are never purged: they grow until the disk is full",
                    evidence={"expire_logs_days": days, "binlog_expire_logs_seconds": secs,
                              "binlog_expire_logs_auto_purge": auto,
                              "rule": "pt-variable-advisor expire_logs_days"},
                    suggestion=("SET GLOBAL binlog_expire_logs_auto_purge=ON; " if auto
                                and auto.upper() == "OFF" else "")
                    + ("SET GLOBAL expire_logs_days=7;" if var(run, "binlog_expire_logs_seconds")
                       is None else "SET GLOBAL binlog_expire_logs_seconds=604800;")
                    + " (7 days: longer than your backup interval and the slowest replica's "
                    "lag) and in my.cnf. Never "
                    "delete binary logs by hand: PURGE BINARY LOGS BEFORE NOW() - INTERVAL 7 DAY;")
