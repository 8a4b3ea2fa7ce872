"""Durability: fsync, full_page_writes, synchronous_commit, data_checksums, and an
archiver that fails while archive_mode is on."""

from __future__ import annotations

from ...base import Run, category
from ...models import Severity
from .common import rate, rows, setting

ARCHIVER = ("archiver", "SELECT archived_count, failed_count, last_archived_wal, "
            "last_archived_time, last_failed_wal, last_failed_time, (last_failed_time IS NOT NULL "
            "AND (last_archived_time IS NULL OR last_failed_time > last_archived_time)) AS failing "
            "FROM pg_stat_archiver")


def queries(run: Run) -> list[tuple[str, str]]:
    return [ARCHIVER]


class DurabilityChecks:
    @category("durability")
    def check_durability(self, run: Run) -> None:
        def fix(name: str, value: str) -> str:
            return f"ALTER SYSTEM SET {name} = {value}; SELECT pg_reload_conf();"

        if setting(run, "fsync") == "off":
            run.finding("postgres.durability.fsync_off", Severity.CRITICAL,
                        "fsync is off: a crash or power loss can corrupt the cluster",
                        evidence={"fsync": "off"}, suggestion=fix("fsync", "on"))
        if setting(run, "full_page_writes") == "off":
            run.finding("postgres.durability.full_page_writes_off", Severity.CRITICAL,
                        "full_page_writes is off: a torn page after a crash is not repaired",
                        evidence={"full_page_writes": "off"},
                        suggestion=fix("full_page_writes", "on"))
        sc = setting(run, "synchronous_commit")
        if sc == "off":
            run.finding("postgres.durability.synchronous_commit_off", Severity.WARNING,
                        "synchronous_commit is off: a crash loses the last committed "
                        "transactions (up to 3 x wal_writer_delay)",
                        evidence={"synchronous_commit": sc},
                        suggestion=fix("synchronous_commit", "on")
                        + " (or keep it off only for the sessions that can lose writes: "
                        "SET synchronous_commit = off; in them)")
        if setting(run, "data_checksums") == "off":
            run.finding("postgres.durability.data_checksums_off", Severity.INFO,
                        "Data checksums are off: silent corruption on disk goes unnoticed",
                        evidence={"data_checksums": "off"},
                        suggestion="With the cluster stopped: pg_checksums --enable -D <datadir> "
                        "(or initdb --data-checksums for a new cluster).")
        if setting(run, "archive_mode") in ("on", "always"):
            got = rows(run, "archiver", "durability", "pg_stat_archiver") or []
            fails = rate(run, "archiver_failed") if "archiver_failed" in run.data["reading"].values else None
            if got and got[0]["failing"]:
                a = got[0]
                ev = {"archive_mode": setting(run, "archive_mode"),
                      "failed_count": int(a["failed_count"]), "last_failed_wal": a["last_failed_wal"],
                      "last_failed_time": a["last_failed_time"].isoformat(),
                      "last_archived_wal": a["last_archived_wal"],
                      "last_archived_time": a["last_archived_time"] and a["last_archived_time"].isoformat()}
                if fails is not None:
                    ev.update(fails.evidence("failed_count"))
                run.finding("postgres.durability.archiver_failing", Severity.CRITICAL,
                            f"WAL archiving fails (last failure {ev['last_failed_wal']}); WAL "
                            "piles up in pg_wal and point-in-time recovery has a gap",
                            evidence=ev, suggestion="Run archive_command by hand as the postgres "
                            "user to see its error (SHOW archive_command;), fix it, then SELECT "
                            "pg_switch_wal(); to check it archives.")
