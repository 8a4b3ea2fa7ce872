"""Task definitions: thin wrappers around :class:`workers.runtime.Runtime`.

    diagnose.<type>(target, categories=None, force=False, cache_ttl=None)
    health.<type>(target)
    action.<type>(target, action, params=None, allow=[], dry_run=False)
    ksa.retention()                 prune history and audit log (KSA_HISTORY_*), roll up
    ksa.noop()                      the floor the bench compares against, and
    ksa.noop_limited()              the same under soft/hard time limits: registered
                                    only with KSA_BENCH_TASKS=1 (bench/celery_fleet.py)

``target`` is a MiddlewareTarget as a dict with secret references only
(``"auth": {"password": "env:REDIS_PASSWORD"}``); the type comes from the task name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from celery import Celery, Task

from kubestack_ai.plugins.logcontext import get_logger

from .catalog import PluginSpec
from .laststate import FILE_NAME as LAST_STATES
from .limits import DEFAULT_HARD_LIMIT as DEFAULT_HARD
from .limits import DEFAULT_SOFT_LIMIT as DEFAULT_SOFT
from .runtime import Runtime
from .store import SafeStore

RESULT_REPR = 4096
"""Characters of a task's result Flower shows (Celery's default, 1024, cut a diagnosis
off in its metrics); the result's ``summary`` comes first either way."""

_runtime: Runtime | None = None
_runtime_pid: int | None = None

RETENTION_SOFT = 1800.0
"""Seconds a pruning run may take (the first one over a long history deletes a lot)."""
RETENTION_STATEMENT = 300.0
"""Seconds one statement of a prune may take, or wait on a lock (a batch of deletes and
its rollup; the per-target count over the whole history): the storage time-out of the
retention task's own store, whose whole call is bounded by the task's soft limit. A
diagnosis's few seconds (KSA_STORAGE_TIMEOUT) would abandon a prune mid-way on a
server database."""
log = get_logger(__name__)


def runtime(app: Celery) -> Runtime:
    """This process's Runtime (a forked child builds its own on first use)."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        settings = app.ksa_settings
        store = SafeStore(settings.database_url, spool=settings.spool_dir,
                          timeout=task_storage_timeout(settings.storage_timeout, app.ksa_specs))
        _runtime = Runtime(app.ksa_specs, store, settings.cache_ttl,
                           last_states=settings.home / LAST_STATES, home=settings.home)
        _runtime_pid = os.getpid()
    return _runtime


def task_storage_timeout(limit: float, specs: Mapping[str, PluginSpec]) -> float:
    """A storage call in a task waits at most a third of the shortest soft limit (and
    at least 1 s): a database that hangs leaves a task time to run and answer."""
    shortest = min((s.soft_limit for s in specs.values()), default=DEFAULT_SOFT)
    return min(limit, max(1.0, shortest / 3))


def current_runtime() -> Runtime | None:
    return _runtime


def register(app: Celery, specs: Mapping[str, PluginSpec], types: Iterable[str]) -> None:
    for mtype in types:
        spec = specs.get(mtype)
        _diagnose_task(app, mtype, spec)
        _health_task(app, mtype, spec)
        _action_task(app, mtype, spec)
    if app.ksa_settings.bench_tasks:
        _bench_tasks(app)

    # acknowledged on receipt: a lost run is not redelivered (the next one comes within
    # an interval), and its long limit stays out of the visibility timeout's floor
    @app.task(name="ksa.retention", shared=False, soft_time_limit=RETENTION_SOFT,
              time_limit=RETENTION_SOFT + 60, acks_late=False)
    def retention() -> dict[str, Any]:
        """Prune the run history and the audit log as the settings say; beat runs it
        every KSA_RETENTION_INTERVAL."""
        settings = app.ksa_settings
        # a store of its own: the runtime's waits a diagnosis's few seconds, and a prune
        # that outlived them would leave it in back-off for the diagnoses after it
        store = SafeStore(settings.database_url,
                          timeout=max(RETENTION_STATEMENT, settings.storage_timeout))
        report, err = store.call("retention", lambda s: s.prune(**settings.retention()),
                                 timeout=RETENTION_SOFT)
        age = settings.adhoc_age()
        adhoc, err2 = (store.call("retention", lambda s: s.prune_adhoc(age),
                                  timeout=RETENTION_SOFT)
                       if age is not None else (0, None))
        store.close()
        err = err or err2
        log.info("retention: %s, %s one-off target(s) aged out%s", report, adhoc,
                 f" ({err})" if err else "")
        return {"runs": getattr(report, "runs", None), "audit": getattr(report, "audit", None),
                "adhoc": adhoc, "storage_error": err}


def _bench_tasks(app: Celery) -> None:
    @app.task(name="ksa.noop", bind=True, shared=False)
    def noop(self: Task) -> dict[str, Any]:
        return {"task_id": self.request.id}

    @app.task(name="ksa.noop_limited", bind=True, shared=False, soft_time_limit=DEFAULT_SOFT,
              time_limit=DEFAULT_HARD)
    def noop_limited(self: Task) -> dict[str, Any]:
        """A no-op under time limits, as every diagnosis runs: the bench's second floor."""
        return {"task_id": self.request.id}


def _diagnose_task(app: Celery, mtype: str, spec: PluginSpec | None) -> None:
    soft = spec.soft_limit if spec else DEFAULT_SOFT
    hard = spec.hard_limit if spec else DEFAULT_HARD

    def diagnose(self: Task, target: Mapping[str, Any], categories: Sequence[str] | None = None,
                 force: bool = False, cache_ttl: float | None = None) -> dict[str, Any]:
        return runtime(app).diagnose(self.request.id, mtype, target, categories, force,
                                     cache_ttl)

    diagnose.__doc__ = f"Diagnose one {mtype} target; the result is stored and returned."
    app.task(name=f"diagnose.{mtype}", bind=True, shared=False, soft_time_limit=soft, time_limit=hard,
             acks_late=True, reject_on_worker_lost=True, resultrepr_maxsize=RESULT_REPR)(diagnose)


def _health_task(app: Celery, mtype: str, spec: PluginSpec | None) -> None:
    soft = spec.health_soft_limit if spec else 5.0
    hard = spec.health_hard_limit if spec else 15.0

    def health(self: Task, target: Mapping[str, Any]) -> dict[str, Any]:
        return runtime(app).health(self.request.id, mtype, target)

    health.__doc__ = f"Health check (connect) of one {mtype} target."
    # a health check is only worth its freshness: not redelivered after a crash
    app.task(name=f"health.{mtype}", bind=True, shared=False, soft_time_limit=soft, time_limit=hard,
             acks_late=False, resultrepr_maxsize=RESULT_REPR)(health)


def _action_task(app: Celery, mtype: str, spec: PluginSpec | None) -> None:
    soft = spec.action_soft_limit if spec else DEFAULT_SOFT
    hard = spec.action_hard_limit if spec else DEFAULT_HARD

    def action(self: Task, target: Mapping[str, Any], action: str,
               params: Mapping[str, Any] | None = None, allow: Sequence[str] = (),
               dry_run: bool = False) -> dict[str, Any]:
        sender = self.request.origin or self.request.hostname or "?"
        return runtime(app).action(self.request.id, f"task {self.request.id} from {sender}",
                                   mtype, target, action, params or {}, allow, dry_run)

    action.__doc__ = (f"Run one whitelisted action on a {mtype} target; every attempt is "
                      "audited (before it runs: no audit log, no action).")
    # an action is not redelivered after a crash: it may have done its work; the audit
    # log keeps its "started" record
    app.task(name=f"action.{mtype}", bind=True, shared=False, soft_time_limit=soft,
             time_limit=hard, acks_late=False)(action)


__all__ = ["SafeStore", "current_runtime", "register", "runtime"]
