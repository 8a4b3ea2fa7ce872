"""Which server we talk to (MySQL 5.7/8.x or MariaDB 10.x/11.x) and the statements,
column names and privileges that differ between them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class Server:
    flavor: str  # "mysql" or "mariadb"
    version: tuple[int, int, int]
    text: str
    user: str  # CURRENT_USER() as 'user'@'host', ready for a GRANT
    connection_id: int

    @classmethod
    def detect(cls, version: str, comment: str, current_user: str, connection_id: int) -> Server:
        text = version or ""
        mariadb = "mariadb" in text.lower() or "mariadb" in (comment or "").lower()
        m = _VERSION.match(text)
        ver = (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else (0, 0, 0)
        # MariaDB before 11 could prefix "5.5.5-" to its version for old clients
        if mariadb and text.startswith("5.5.5-"):
            m = _VERSION.match(text[6:])
            ver = (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else ver
        name, _, host = (current_user or "").rpartition("@")
        user = f"'{name}'@'{host}'" if name else f"'{current_user}'@'%'"
        return cls("mariadb" if mariadb else "mysql", ver, text, user, connection_id)

    @property
    def mariadb(self) -> bool:
        return self.flavor == "mariadb"

    @property
    def label(self) -> str:
        return f"{'MariaDB' if self.mariadb else 'MySQL'} {'.'.join(map(str, self.version))}"

    # -- replication ------------------------------------------------------------------

    @property
    def replica_status_sql(self) -> str:
        if self.mariadb:
            return "SHOW ALL SLAVES STATUS"  # every multi-source connection (10.0+)
        if self.version >= (8, 0, 22):
            return "SHOW REPLICA STATUS"
        return "SHOW SLAVE STATUS"

    @property
    def replication_privilege(self) -> str:
        if self.mariadb and self.version >= (10, 5, 9):
            return "SLAVE MONITOR"
        if self.mariadb and self.version >= (10, 5, 2):
            return "REPLICATION SLAVE ADMIN"
        return "REPLICATION CLIENT"

    # -- performance ------------------------------------------------------------------

    @property
    def has_statement_histogram(self) -> bool:
        """MySQL 8.0's performance_schema.events_statements_histogram_global."""
        return not self.mariadb and self.version >= (8, 0, 0)

    @property
    def has_digest_quantiles(self) -> bool:
        return not self.mariadb and self.version >= (8, 0, 0)

    # -- innodb -----------------------------------------------------------------------

    @property
    def lock_waits_sql(self) -> str:
        trx = ("r.trx_mysql_thread_id AS waiting_thread, r.trx_query AS waiting_query, "
               "TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()) AS wait_seconds, "
               "b.trx_mysql_thread_id AS blocking_thread, b.trx_query AS blocking_query, "
               "TIMESTAMPDIFF(SECOND, b.trx_started, NOW()) AS blocking_trx_age")
        if not self.mariadb and self.version >= (8, 0, 1):
            return (f"SELECT {trx} FROM performance_schema.data_lock_waits w "
                    "JOIN information_schema.INNODB_TRX r "
                    "ON r.trx_id = w.REQUESTING_ENGINE_TRANSACTION_ID "
                    "JOIN information_schema.INNODB_TRX b "
                    "ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID "
                    "ORDER BY wait_seconds DESC LIMIT 20")
        return (f"SELECT {trx} FROM information_schema.INNODB_LOCK_WAITS w "
                "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id "
                "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id "
                "ORDER BY wait_seconds DESC LIMIT 20")

    @property
    def blockers_sql(self) -> str:
        """Threads whose transaction others wait on, with how many wait."""
        if not self.mariadb and self.version >= (8, 0, 1):
            return ("SELECT b.trx_mysql_thread_id AS thread_id, COUNT(*) AS waiters "
                    "FROM performance_schema.data_lock_waits w JOIN information_schema.INNODB_TRX b "
                    "ON b.trx_id = w.BLOCKING_ENGINE_TRANSACTION_ID GROUP BY b.trx_mysql_thread_id")
        return ("SELECT b.trx_mysql_thread_id AS thread_id, COUNT(*) AS waiters "
                "FROM information_schema.INNODB_LOCK_WAITS w JOIN information_schema.INNODB_TRX b "
                "ON b.trx_id = w.blocking_trx_id GROUP BY b.trx_mysql_thread_id")

    @property
    def lock_waits_source(self) -> str:
        if not self.mariadb and self.version >= (8, 0, 1):
            return "performance_schema.data_lock_waits"
        return "information_schema.INNODB_LOCK_WAITS"

    @property
    def deadlock_counter_sql(self) -> str | None:
        """MariaDB has the Innodb_deadlocks status variable; MySQL counts in INNODB_METRICS."""
        if self.mariadb:
            return None
        return ("SELECT COUNT AS deadlocks, STATUS AS status FROM information_schema.INNODB_METRICS "
                "WHERE NAME = 'lock_deadlocks'")

    @property
    def tablespaces_table(self) -> str:
        if not self.mariadb and self.version >= (8, 0, 0):
            return "information_schema.INNODB_TABLESPACES"
        return "information_schema.INNODB_SYS_TABLESPACES"

    @property
    def lock_waits_grant(self) -> str:
        grant = self.grant("PROCESS")
        if self.lock_waits_source.startswith("performance_schema"):
            grant += " " + self.grant("SELECT", "performance_schema.*")
        return grant

    def grant(self, privilege: str, on: str = "*.*") -> str:
        return f"GRANT {privilege} ON {on} TO {self.user};"


# Normalised replica status: our key -> column names (new first, old second).
REPLICA_COLUMNS: dict[str, tuple[str, ...]] = {
    "channel": ("Channel_Name", "Channel_name", "Connection_name"),
    "source_host": ("Source_Host", "Master_Host"),
    "source_port": ("Source_Port", "Master_Port"),
    "io_running": ("Replica_IO_Running", "Slave_IO_Running"),
    "sql_running": ("Replica_SQL_Running", "Slave_SQL_Running"),
    "seconds_behind": ("Seconds_Behind_Source", "Seconds_Behind_Master"),
    "last_io_errno": ("Last_IO_Errno",),
    "last_io_error": ("Last_IO_Error",),
    "last_sql_errno": ("Last_SQL_Errno",),
    "last_sql_error": ("Last_SQL_Error",),
    "relay_log_space": ("Relay_Log_Space",),
    "io_state": ("Replica_IO_State", "Slave_IO_State"),
    "sql_state": ("Replica_SQL_Running_State", "Slave_SQL_Running_State"),
}


def normalise_replica(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, names in REPLICA_COLUMNS.items():
        out[key] = next((row[n] for n in names if n in row), None)
    out["column_names"] = "Replica_/Source_" if "Replica_IO_Running" in row else "Slave_/Master_"
    return out
