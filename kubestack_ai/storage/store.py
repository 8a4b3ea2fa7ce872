"""``Store``: plugin state, result cache, run history (pruned, rolled up by day) and audit
log on SQLite, PostgreSQL or MySQL/MariaDB.

A facade over collaborators that each own one table family and share one ``Database``::

    Store
    ├── db         Database      URL, one engine per process, transactions (_base.py)
    ├── runs       Runs          the run history and the result cache (_results.py)
    ├── fleet      Fleet         the latest run of every target: the fleet's view (_fleet.py)
    ├── members    Members       the declared fleet and the one-off targets (members.py)
    ├── states     PluginStates  plugin state shared by every worker (_state.py)
    ├── audit      Audit         the audit log of executed actions (_audit.py)
    ├── retention  Retention     pruning by age and count, the daily rollups (_retention.py)
    └── trends     Trends        metrics over time and status strips (trends.py)

Callers keep calling ``store.record_run(...)``: each method below is one line naming the
collaborator's method it is (signature, docstring and types are that method's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from sqlalchemy import Engine

from ._audit import Audit
from ._base import Database
from ._fleet import Fleet
from ._results import Runs
from ._retention import Retention
from ._state import PluginStates
from .members import Members
from .trends import Trends

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C")


class _Via(Generic[C, P, R]):
    """``store.<name>`` is ``store.<part>.<name>``, typed as that method. On the class it
    is the collaborator's function, for ``inspect.signature`` and ``help``."""

    def __init__(self, part: str, fn: Callable[Concatenate[C, P], R]) -> None:
        self.part, self.fn = part, fn
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Callable[Concatenate[C, P], R]: ...
    @overload
    def __get__(self, obj: Store, owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, obj: Store | None, owner: type[Any]) -> Any:
        if obj is None:
            return self.fn
        return getattr(getattr(obj, self.part), self.fn.__name__)


class Store:
    """The storage of one KubeStack AI deployment.

    ``Store(url)``: a SQLAlchemy URL of SQLite, PostgreSQL, MySQL or MariaDB (another
    database is refused here, with that message); None -> ``$KSA_DATABASE_URL``, else the SQLite file
    ``$KSA_HOME/ksa.db`` (``KSA_HOME`` defaults to ``~/.ksa``). Call ``migrate()`` once
    at start-up. Safe to share between threads; a forked child gets its own engine.
    Every method runs one short transaction and raises ``StorageUnavailable`` when the
    database cannot be reached; the next call after it is back succeeds.
    """

    def __init__(self, url: str | None = None, *, timeout: float = 10.0,
                 busy_timeout: float | None = None, echo: bool = False) -> None:
        self.db = db = Database(url, timeout=timeout, busy_timeout=busy_timeout, echo=echo)
        self.url, self.masked_url, self.timeout = db.url, db.masked_url, db.timeout
        self.runs = Runs(db)
        self.fleet = Fleet(db)
        self.members = Members(db)
        self.states = PluginStates(db)
        self.audit = Audit(db)
        self.retention = Retention(db)
        self.trends = Trends(db)

    def __repr__(self) -> str:
        return f"Store({self.masked_url!r})"

    @property
    def engine(self) -> Engine:
        """This process's engine (see ``Database.engine``)."""
        return self.db.engine

    migrate = _Via("db", Database.migrate)
    schema_revision = _Via("db", Database.schema_revision)
    dispose = _Via("db", Database.dispose)
    dispose_abandoned = _Via("db", Database.dispose_abandoned)

    record_run = _Via("runs", Runs.record_run)
    cached_result = _Via("runs", Runs.cached_result)
    invalidate = _Via("runs", Runs.invalidate)
    purge_expired = _Via("runs", Runs.purge_expired)
    latest_results = _Via("runs", Runs.latest_results)
    history = _Via("runs", Runs.history)
    get_run = _Via("runs", Runs.get_run)
    plugin_runs = _Via("runs", Runs.plugin_runs)
    snapshots = _Via("runs", Runs.snapshots)

    fleet_counts = _Via("fleet", Fleet.fleet_counts)
    fleet_targets = _Via("fleet", Fleet.fleet_targets)
    fleet_page = _Via("fleet", Fleet.fleet_page)
    all_targets = _Via("fleet", Fleet.all_targets)
    metric_rows = _Via("fleet", Fleet.metric_rows)
    targets_changed = _Via("fleet", Fleet.targets_changed)
    targets_at_least = _Via("fleet", Fleet.targets_at_least)
    target = _Via("fleet", Fleet.target)
    run_summaries = _Via("fleet", Fleet.run_summaries)
    finding_spans = _Via("fleet", Fleet.finding_spans)
    plugin_targets = _Via("fleet", Fleet.plugin_targets)
    run_resources = _Via("fleet", Fleet.run_resources)
    host_resources = _Via("fleet", Fleet.host_resources)

    set_fleet = _Via("members", Members.set_fleet)
    fleet_members = _Via("members", Members.fleet_members)
    fleet_key_for = _Via("members", Members.fleet_key_for)
    forget = _Via("members", Members.forget)
    prune_adhoc = _Via("members", Members.prune_adhoc)

    get_plugin_state = _Via("states", PluginStates.get_plugin_state)
    list_plugin_states = _Via("states", PluginStates.list_plugin_states)
    set_plugin_state = _Via("states", PluginStates.set_plugin_state)
    request_reload = _Via("states", PluginStates.request_reload)
    record_reload = _Via("states", PluginStates.record_reload)
    request_rollback = _Via("states", PluginStates.request_rollback)

    record_action = _Via("audit", Audit.record_action)
    update_action = _Via("audit", Audit.update_action)
    end_started_action = _Via("audit", Audit.end_started_action)
    close_abandoned_actions = _Via("audit", Audit.close_abandoned_actions)
    audit_log = _Via("audit", Audit.audit_log)

    prune = _Via("retention", Retention.prune)
    purge_history = _Via("retention", Retention.purge_history)
    rollups = _Via("retention", Retention.rollups)

    metric_points = _Via("trends", Trends.metric_points)
    status_strips = _Via("trends", Trends.status_strips)
