"""mysql-diagnostics: MySQL 5.7/8.x and MariaDB 10.x/11.x through PyMySQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..base import MiddlewarePlugin, Run
from ..deadline import Deadline
from ..errors import ActionRefusedError, PluginError
from ..execution import ActionSpec
from ..logcontext import get_logger
from ..models import MiddlewareTarget, PluginInfo, utcnow
from ..rates import second_reading
from . import actions
from .checks import connection, durability, innodb, performance, replication, schema, security
from .checks.connection import ConnectionChecks
from .checks.durability import DurabilityChecks
from .checks.innodb import InnodbChecks
from .checks.performance import PerformanceChecks
from .checks.replication import ReplicationChecks
from .checks.schema import SchemaChecks
from .checks.security import SecurityChecks
from .client import QueryFailure, Session, open_connection
from .constants import (
    ACTIONS,
    DANGEROUS_ACTIONS,
    DEFAULTS,
    PLUGIN_ID,
    TARGET_OPTIONS,
    VARIABLES,
    VERSION,
)
from .server import Server
from .window import SAMPLED, limit_reached, needs_sample

log = get_logger(__name__)

INFO = PluginInfo(
    id=PLUGIN_ID, name="MySQL / MariaDB diagnostics", version=VERSION,
    description="Replication, statement performance, connections, InnoDB, durability, "
                "accounts and schema of MySQL 5.7/8.x and MariaDB 10.x/11.x, with the exact "
                "setting, GRANT or statement to change.",
    capabilities=("health-check", "metrics", "diagnose", "slow-query"), author="KubeStack AI",
    actions=ACTIONS, dangerous_actions=DANGEROUS_ACTIONS,
)

QUERIES: dict[str, Callable[[Run], list[tuple[str, str]]]] = {
    "replication": replication.queries,
    "performance": performance.queries,
    "connection": connection.queries,
    "innodb": innodb.queries,
    "durability": durability.queries,
    "security": security.queries,
    "schema": schema.queries,
}


# CURRENT_USER() is user@host; USER_PRIVILEGES names grantees 'user'@'host'
_GRANTEE = ("CONCAT(CHAR(39), SUBSTRING_INDEX(CURRENT_USER(), '@', 1), CHAR(39), '@', CHAR(39), "
            "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), CHAR(39))")
_IDENT = ("SELECT VERSION() AS version, @@version_comment AS comment, CURRENT_USER() AS user, "
          "CONNECTION_ID() AS id, NOW() AS now, (SELECT COUNT(*) FROM "
          "information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = 'PROCESS' "
          f"AND GRANTEE = {_GRANTEE}) AS has_process")
_VARS = ("SHOW GLOBAL VARIABLES WHERE Variable_name IN ("
         + ", ".join(f"'{v}'" for v in VARIABLES) + ")")


class PrepareError(PluginError):
    """The server's identity, status or variables could not be read."""


# categories are collected from the reversed MRO: the mixins are listed last-run first so
# that a diagnosis reads replication, performance, connection, innodb, durability,
# security, schema
class MySQLPlugin(SchemaChecks, SecurityChecks, DurabilityChecks, InnodbChecks,
                  ConnectionChecks, PerformanceChecks, ReplicationChecks, MiddlewarePlugin):
    def __init__(self) -> None:
        super().__init__()
        self._session: Session | None = None

    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "mysql"

    @classmethod
    def known_thresholds(cls) -> frozenset[str]:
        return frozenset(DEFAULTS)

    def supported_versions(self) -> list[str]:
        return ["MySQL 5.7", "MySQL 8.x", "MariaDB 10.x", "MariaDB 11.x"]

    # -- connection -----------------------------------------------------------------------

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        s = self._session
        if s is not None and s.target == target and s.busy.acquire(blocking=False):
            try:
                ok = s.alive(deadline)
            finally:
                s.busy.release()
            if ok:
                self.target = target
                return
        self._close()
        self._session = Session(open_connection(target, deadline), target)
        self.target = target
        log.debug("%s connected to %s", PLUGIN_ID, target.name)

    def disconnect(self, deadline: Deadline) -> None:
        self._close()

    def stop(self, deadline: Deadline) -> None:
        self._close()

    def _close(self) -> None:
        if self._session is not None:
            self._session.release()
            self._session = None

    def session(self) -> Session:
        if self._session is None:
            raise PrepareError(f"{PLUGIN_ID}: not connected")
        return self._session

    # -- the run --------------------------------------------------------------------------

    def prepare(self, run: Run) -> None:
        """One round trip on a known connection, two on a new one.

        The first diagnosis on a connection reads who and what the server is, then sends
        every chosen category's statements in one multi-statement batch. Later ones reuse
        the server's identity and the variables that choose statements (the version and
        performance_schema cannot change without a restart, which drops the connection)
        and send the identity, status, variables and every category's statements at once.
        """
        with self.session().use() as s:
            self._prepare(run, s)

    def _prepare(self, run: Run, s: Session) -> None:
        run.data["session"] = s
        base = [("ident", _IDENT), ("status", "SHOW GLOBAL STATUS"), ("vars", _VARS)]
        if s.server is None:
            self._read_base(run, s.batch(base, run.deadline))
            run.data["q"] = s.batch(self._category_statements(run), run.deadline)
        else:
            run.data.update(server=s.server, vars=s.known_vars)
            statements = self._category_statements(run)
            got = s.batch(base + statements, run.deadline)
            self._read_base(run, got)
            run.data["q"] = {k: got[k] for k, _ in statements if k in got}
        self._second_reading(run, s)

    @staticmethod
    def _second_reading(run: Run, s: Session) -> None:
        """Counters judged as rates (window.py): without history, read them again a short
        window later, and only when one that matters is non-zero."""
        watched: dict[str, str] = {}
        if "connection" in run.categories:
            watched["Connection_errors_max_connections"] = "connection.refused_max_connections"
            if limit_reached(run):  # MariaDB counts its refusals in Aborted_connects
                watched["Aborted_connects"] = "connection.aborted_connects"
        if "innodb" in run.categories:
            watched["Innodb_buffer_pool_wait_free"] = "innodb.buffer_pool_wait_free"
        if not watched or not needs_sample(run, watched):
            return
        wait = float(run.threshold("counter_sample_seconds", DEFAULTS["counter_sample_seconds"]))
        names = ", ".join(f"'{n}'" for n in SAMPLED)
        t0 = time.monotonic()
        got = second_reading(lambda: s.batch([("status2", "SHOW GLOBAL STATUS WHERE "
                                               f"Variable_name IN ({names})")], run.deadline),
                             wait, run.deadline)
        if got is None or isinstance(got["status2"], QueryFailure):
            return  # no time or no answer: the counters are judged as lifetime totals
        run.data["status2_seconds"] = time.monotonic() - t0
        rows = got["status2"]
        run.data["status2"] = {r["Variable_name"]: r["Value"] for r in rows}

    @staticmethod
    def _category_statements(run: Run) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name in run.categories:
            out += QUERIES[name](run)
        return out

    def _read_base(self, run: Run, got: dict[str, Any]) -> None:
        for key in ("ident", "status", "vars"):
            if isinstance(got.get(key), QueryFailure):
                raise PrepareError(f"cannot read the server's {key}: {got[key]}")
        ident = got["ident"][0]
        srv = Server.detect(str(ident["version"]), str(ident["comment"] or ""),
                            str(ident["user"]), int(ident["id"]))
        variables = {r["Variable_name"].lower(): r["Value"] for r in got["vars"]}
        s = run.data["session"]
        s.server, s.known_vars = srv, variables
        run.data.update(
            server=srv, now=ident["now"], now_utc=utcnow(), has_process=bool(ident["has_process"]),
            status={r["Variable_name"]: r["Value"] for r in got["status"]}, vars=variables,
        )
        run.metric("server.version", srv.text)
        run.metric("server.flavor", srv.flavor)
        run.metric("server.uptime_s", int(run.data["status"].get("Uptime", 0) or 0))

    # -- actions --------------------------------------------------------------------------

    @classmethod
    def target_options(cls) -> dict[str, Any]:
        return TARGET_OPTIONS

    def action_specs(self) -> Mapping[str, ActionSpec]:
        return actions.SPECS

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        if action == "kill_long_queries":
            with self.session().use() as s:
                return actions.kill_long_queries(s, deadline, params)
        # the sandbox refuses undeclared actions first; this is the plugin's own guard
        raise ActionRefusedError(PLUGIN_ID, action, f"not an action of {PLUGIN_ID} "
                                 f"(actions: {', '.join(ACTIONS)})")
