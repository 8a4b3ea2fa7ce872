"""postgres-diagnostics: PostgreSQL 12-17 through psycopg 3.

A diagnosis costs two round trips on the main node: the server's identity, settings and
counters, then every chosen category's statements in one pipeline (the second depends
on the first: a standby is asked other questions than a primary, pg_stat_statements
only where installed). A further endpoint (a standby) gets the same two for the
replication category. Counters are judged as rates (``plugins/rates.py``): against the
stored runs of the same server life, else a second reading a moment later, taken only
when a counter that matters moved since start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ..base import MiddlewarePlugin, Run
from ..deadline import Deadline
from ..errors import ActionRefusedError, ConnectError
from ..execution import ActionSpec
from ..logcontext import get_logger
from ..models import MiddlewareTarget, PluginInfo
from ..rates import Reading, counter_rate, readings, second_reading
from . import actions
from .checks import (
    checkpoints,
    connection,
    durability,
    maintenance,
    performance,
    replication,
    schema,
    security,
)
from .checks.checkpoints import CheckpointChecks
from .checks.common import COUNTERS, COUNTERS_SQL, ServerUnreadable
from .checks.connection import ConnectionChecks
from .checks.durability import DurabilityChecks
from .checks.maintenance import MaintenanceChecks
from .checks.performance import PerformanceChecks
from .checks.replication import ReplicationChecks
from .checks.schema import SchemaChecks
from .checks.security import SecurityChecks
from .client import QueryFailure, Session, open_connection
from .constants import ACTIONS, DANGEROUS_ACTIONS, DEFAULTS, PLUGIN_ID, SETTINGS, TARGET_OPTIONS, VERSION

log = get_logger(__name__)

INFO = PluginInfo(
    id=PLUGIN_ID, name="PostgreSQL diagnostics", version=VERSION,
    description="Connections, long queries and lock chains, replication and slots, "
                "wraparound and vacuum, indexes and schema, durability, security and "
                "checkpoints of PostgreSQL 12-17, each with the statement to run.",
    capabilities=("health-check", "metrics", "diagnose", "execute"), author="KubeStack AI",
    actions=ACTIONS, dangerous_actions=DANGEROUS_ACTIONS,
)

QUERIES: dict[str, Callable[[Run], list[tuple[str, str]]]] = {
    "connection": connection.queries,
    "performance": performance.queries,
    "replication": replication.queries,
    "maintenance": maintenance.queries,
    "schema": schema.queries,
    "durability": durability.queries,
    "security": security.queries,
    "checkpoints": checkpoints.queries,
}

_IDENT = (
    "SELECT current_setting('server_version') AS version, current_setting("
    "'server_version_num')::int AS version_num, pg_is_in_recovery() AS in_recovery, "
    "current_user AS usr, current_database() AS db, pg_backend_pid() AS pid, "
    "extract(epoch FROM pg_postmaster_start_time()) AS started, extract(epoch FROM now() - "
    "pg_postmaster_start_time()) AS uptime, (SELECT rolsuper FROM pg_roles WHERE rolname = "
    "current_user) AS superuser, pg_has_role(current_user, 'pg_monitor', 'USAGE') AS monitor, "
    "pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats, "
    "has_function_privilege('pg_hba_file_rules()', 'EXECUTE') AND has_table_privilege("
    "'pg_hba_file_rules', 'SELECT') AS hba_readable, (SELECT extnamespace::regnamespace::text "
    "FROM pg_extension WHERE extname = 'pg_stat_statements') AS pgss")
_SETTINGS = ("SELECT name, setting FROM pg_settings WHERE name IN ("
             + ", ".join(f"'{s}'" for s in SETTINGS) + ")")
BASE = [("ident", _IDENT), ("settings", _SETTINGS), ("counters", COUNTERS_SQL)]
# counters that make a second reading worth its wait when they moved since start
_SAMPLE_IF_MOVED = ("deadlocks", "temp_bytes", "xact_rollback", "checkpoints_req")
_RATE_CATEGORIES = {"performance", "checkpoints"}


# categories are collected from the reversed MRO: the mixins are listed last-run first
class PostgresPlugin(CheckpointChecks, SecurityChecks, DurabilityChecks, SchemaChecks,
                     MaintenanceChecks, ReplicationChecks, PerformanceChecks, ConnectionChecks,
                     MiddlewarePlugin):
    def __init__(self) -> None:
        super().__init__()
        self._sessions: dict[str, Session] = {}

    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "postgres"

    @classmethod
    def known_thresholds(cls) -> frozenset[str]:
        return frozenset(DEFAULTS)

    def supported_versions(self) -> list[str]:
        return ["PostgreSQL 12", "13", "14", "15", "16", "17"]

    @classmethod
    def target_options(cls) -> dict[str, Any]:
        return TARGET_OPTIONS

    # -- connection -----------------------------------------------------------------------

    def _session(self, endpoint: str, deadline: Deadline, target: MiddlewareTarget,
                 dbname: str | None = None) -> Session:
        key = endpoint if dbname is None else f"{endpoint}/{dbname}"
        s = self._sessions.get(key)
        # a call that overran its deadline may still be reading on it: leave it to that
        # call (it closes the session when done) and open another
        if s is not None and s.target == target and s.alive() and not s.busy.locked():
            return s
        if s is not None:
            s.release()
        s = Session(open_connection(target, endpoint, deadline, dbname), target, endpoint)
        self._sessions[key] = s
        return s

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        if self.target is not None and self.target != target:
            self._close()
        self._session(target.endpoints[0], deadline, target)
        self.target = target
        log.debug("%s connected to %s", PLUGIN_ID, target.name)

    def disconnect(self, deadline: Deadline) -> None:
        self._close()

    def stop(self, deadline: Deadline) -> None:
        self._close()

    def _close(self) -> None:
        for s in self._sessions.values():
            s.release()
        self._sessions.clear()

    def main(self) -> Session:
        if self.target is None or self.target.endpoints[0] not in self._sessions:
            raise ServerUnreadable(f"{PLUGIN_ID}: not connected")
        return self._sessions[self.target.endpoints[0]]

    def get_metrics(self, deadline: Deadline) -> dict[str, Any]:
        with self.main().use() as s:
            got = s.batch([("counters", COUNTERS_SQL)], deadline)["counters"]
        if isinstance(got, QueryFailure):
            raise ServerUnreadable(f"cannot read the counters: {got}")
        return {f"counters.{k}": _num(v) for k, v in got[0].items()}

    # -- the run --------------------------------------------------------------------------

    def prepare(self, run: Run) -> None:
        with self.main().use() as s:
            base = s.batch(BASE, run.deadline)
            for key in ("ident", "settings", "counters"):
                if isinstance(base[key], QueryFailure):
                    raise ServerUnreadable(f"cannot read the server's {key}: {base[key]}")
            me = dict(base["ident"][0])  # type: ignore[index]
            run.data.update(ident=me, endpoint=s.endpoint, settings={
                r["name"]: r["setting"] for r in base["settings"]})  # type: ignore[union-attr]
            statements: list[tuple[str, str]] = []
            for name in run.categories:
                statements += QUERIES[name](run)
            run.data["q"] = s.batch(statements, run.deadline) if statements else {}
            self._readings(run, s, base["counters"][0], me)  # type: ignore[index]
        run.metric("server.version", me["version"])
        run.metric("server.in_recovery", bool(me["in_recovery"]))
        if "replication" in run.categories:
            run.data["nodes"] = [self._node(run, ep) for ep in run.target.endpoints[1:]]
        if {"schema", "maintenance"} & set(run.categories):
            run.data["dbs"] = [self._database(run, db) for db in
                               run.target.options.get("databases", ()) if db != me["db"]]

    def _database(self, run: Run, db: str) -> tuple[str, dict[str, Any]]:
        """A further database of the main node: its schema and maintenance statements."""
        statements: list[tuple[str, str]] = []
        if "schema" in run.categories:
            statements += schema.queries(run)
        if "maintenance" in run.categories:
            statements += [q for q in maintenance.queries(run) if q[0] in maintenance.PER_DATABASE]
        try:
            s = self._session(run.target.endpoints[0], run.deadline, run.target, db)
            with s.use():
                return db, s.batch(statements, run.deadline)
        except ConnectError as e:
            run.errors["schema" if "schema" in run.categories else "maintenance"] = (
                f"database {db}: {e}")
            return db, {}

    def _node(self, run: Run, endpoint: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """A further endpoint (a standby): its identity and its replication statements."""
        try:
            s = self._session(endpoint, run.deadline, run.target)
            with s.use():
                got = s.batch([("ident", _IDENT)], run.deadline)
                if isinstance(got["ident"], QueryFailure):
                    return endpoint, {"error": str(got["ident"])}, {}
                me = dict(got["ident"][0])
                return endpoint, me, s.batch(replication.queries_for(bool(me["in_recovery"])),
                                             run.deadline)
        except ConnectError as e:
            return endpoint, {"error": str(e)}, {}

    @staticmethod
    def _readings(run: Run, s: Session, row: dict[str, Any], me: dict[str, Any]) -> None:
        """The counters now, the stored ones of the same server life, and a second reading
        when no stored one lies in the window and a counter that matters has moved."""
        values = {k: _num(row[k]) for k in COUNTERS}
        life = f"{float(me['started']):.0f}"
        for k, v in values.items():
            run.metric(f"counters.{k}", v)
        run.metric("server.started", life)
        run.metric("server.uptime_s", round(float(me["uptime"]), 1))
        now = Reading.of(time.time(), values, life=life, uptime=float(me["uptime"]))
        past = readings(run.history, life_key="server.started", uptime_key="server.uptime_s",
                        select=_counters_of)
        run.data.update(reading=now, past=past)
        if not _RATE_CATEGORIES & set(run.categories):
            return
        window = run.threshold("rate_window_seconds", DEFAULTS["rate_window_seconds"])
        if not counter_rate("deadlocks", now, past, window_seconds=window).needs_sample:
            return
        if not any(values.get(k) for k in _SAMPLE_IF_MOVED):
            return
        wait = run.threshold("counter_sample_seconds", DEFAULTS["counter_sample_seconds"])
        t0 = time.time()
        got = second_reading(lambda: s.batch([("c", COUNTERS_SQL)], run.deadline), wait,
                             run.deadline)
        if got is None or isinstance(got["c"], QueryFailure):
            return  # no time or no answer: judged as lifetime totals only
        row2 = got["c"][0]
        later = Reading.of(time.time(), {k: _num(row2[k]) for k in COUNTERS}, life=life,
                           uptime=float(me["uptime"]) + time.time() - t0)
        run.data.update(reading=later, past=[*past, now], in_run_since=now.at)

    # -- actions --------------------------------------------------------------------------

    def action_specs(self) -> Mapping[str, ActionSpec]:
        return actions.SPECS

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        fn = actions.RUNNERS.get(action)
        if fn is None:
            # the sandbox refuses undeclared actions first; this is the plugin's own guard
            raise ActionRefusedError(PLUGIN_ID, action, f"not an action of {PLUGIN_ID} "
                                     f"(actions: {', '.join(ACTIONS)})")
        with self.main().use() as s:
            return fn(s, deadline, params)


def _counters_of(m: Mapping[str, Any]) -> dict[str, Any] | None:
    if "server.started" not in m:
        return None
    out = {k: m.get(f"counters.{k}") for k in COUNTERS}
    out["server.started"], out["server.uptime_s"] = m["server.started"], m.get("server.uptime_s")
    return out


def _num(v: Any) -> int | float:
    if v is None:
        return 0
    f = float(v)
    return int(f) if f.is_integer() else f
