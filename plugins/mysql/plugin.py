"""mysql-diagnostics: MySQL 5.7/8.x and MariaDB 10.x/11.x through PyMySQL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..base import MiddlewarePlugin, Run
from ..deadline import Deadline
from ..errors import ActionRefusedError, PluginError
from ..models import MiddlewareTarget, PluginInfo
from . import actions
from .checks import connection, innodb, performance, replication
from .checks.connection import ConnectionChecks
from .checks.innodb import InnodbChecks
from .checks.performance import PerformanceChecks
from .checks.replication import ReplicationChecks
from .client import QueryFailure, Session, open_connection
from .constants import ACTIONS, DANGEROUS_ACTIONS, PLUGIN_ID, VARIABLES, VERSION
from .server import Server

log = logging.getLogger(__name__)

INFO = PluginInfo(
    id=PLUGIN_ID, name="MySQL / MariaDB diagnostics", version=VERSION,
    description="Replication, statement performance, connections and InnoDB of MySQL "
                "5.7/8.x and MariaDB 10.x/11.x, with the exact setting or GRANT to change.",
    capabilities=("health-check", "metrics", "diagnose", "slow-query"), author="KubeStack AI",
    actions=ACTIONS, dangerous_actions=DANGEROUS_ACTIONS,
)

QUERIES: dict[str, Callable[[Run], list[tuple[str, str]]]] = {
    "replication": replication.queries,
    "performance": performance.queries,
    "connection": connection.queries,
    "innodb": innodb.queries,
}


class PrepareError(PluginError):
    """The server's identity, status or variables could not be read."""


class MySQLPlugin(ReplicationChecks, PerformanceChecks, ConnectionChecks, InnodbChecks,
                  MiddlewarePlugin):
    def __init__(self) -> None:
        super().__init__()
        self._session: Session | None = None

    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "mysql"

    def supported_versions(self) -> list[str]:
        return ["MySQL 5.7", "MySQL 8.x", "MariaDB 10.x", "MariaDB 11.x"]

    # -- connection -----------------------------------------------------------------------

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        s = self._session
        if s is not None and s.target == target and s.alive(deadline):
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
            self._session.close()
            self._session = None

    def session(self) -> Session:
        if self._session is None:
            raise PrepareError(f"{PLUGIN_ID}: not connected")
        return self._session

    # -- the run --------------------------------------------------------------------------

    def prepare(self, run: Run) -> None:
        """Two round trips: who and what the server is, then every chosen category's
        statements in one multi-statement batch."""
        s = self.session()
        got = s.batch([
            ("ident", "SELECT VERSION() AS version, @@version_comment AS comment, "
             "CURRENT_USER() AS user, CONNECTION_ID() AS id, NOW() AS now, "
             "(SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE = "
             "'PROCESS' AND GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), "
             "'''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')) AS has_process"),
            ("status", "SHOW GLOBAL STATUS"),
            ("vars", "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("
             + ", ".join(f"'{v}'" for v in VARIABLES) + ")"),
        ], run.deadline)
        for key in ("ident", "status", "vars"):
            if isinstance(got[key], QueryFailure):
                raise PrepareError(f"cannot read the server's {key}: {got[key]}")
        ident = got["ident"][0]  # type: ignore[index]
        srv = Server.detect(str(ident["version"]), str(ident["comment"] or ""),
                            str(ident["user"]), int(ident["id"]))
        s.server = srv
        run.data.update(
            server=srv, now=ident["now"], has_process=bool(ident["has_process"]),
            status={r["Variable_name"]: r["Value"] for r in got["status"]},  # type: ignore[union-attr]
            vars={r["Variable_name"].lower(): r["Value"] for r in got["vars"]},  # type: ignore[union-attr]
        )
        run.metric("server.version", srv.text)
        run.metric("server.flavor", srv.flavor)
        run.metric("server.uptime_s", int(run.data["status"].get("Uptime", 0) or 0))
        statements: list[tuple[str, str]] = []
        for name in run.categories:
            statements += QUERIES[name](run)
        run.data["q"] = s.batch(statements, run.deadline) if statements else {}

    # -- actions --------------------------------------------------------------------------

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        if action == "kill_long_queries":
            return actions.kill_long_queries(self.session(), deadline, params)
        # the sandbox refuses undeclared actions first; this is the plugin's own guard
        raise ActionRefusedError(PLUGIN_ID, action, f"not an action of {PLUGIN_ID} "
                                 f"(actions: {', '.join(ACTIONS)})")
