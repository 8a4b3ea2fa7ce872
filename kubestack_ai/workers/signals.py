"""Worker signal handlers: pool check, limits from storage, fork hygiene, killed runs.

Everything here runs in the worker's main process, which also answers remote control
(``inspect ping``) and enforces the time limits: nothing in it may wait on the network
without a bound. Start-up and warm shutdown talk to storage through bounded calls; a
run killed at the hard limit is only spooled to local disk (a worker child, or the next
start or shutdown, writes it).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

from billiard.exceptions import WorkerLostError
from celery import Celery, signals
from celery.exceptions import TimeLimitExceeded
from pydantic import ValidationError

from kubestack_ai.plugins import DiagnosticResult, MiddlewareTarget, Status
from kubestack_ai.plugins.logcontext import get_logger
from kubestack_ai.plugins.models import utcnow
from kubestack_ai.storage.spool import SpooledActionEnd, SpooledRun

from . import tasks
from .catalog import PluginSpec, merge_config
from .limits import apply_limits
from .store import SafeStore

log = get_logger(__name__)

PREFORK = "celery.concurrency.prefork:TaskPool"

_main_store: SafeStore | None = None

FLUSH_BUDGET = 10.0
"""Seconds the main process spends writing spooled runs at start and at warm shutdown."""

ABANDON_MARGIN = 60.0
"""Seconds past the longest action hard limit after which a ``started`` audit row is
closed as ``abandoned`` at worker start: its process died and nobody saw it."""


def main_store(app: Celery) -> SafeStore:
    global _main_store
    if _main_store is None:
        settings = app.ksa_settings
        _main_store = SafeStore(settings.database_url, migrate=True, spool=settings.spool_dir,
                                timeout=settings.storage_timeout)
    return _main_store


def pool_name(pool_cls: Any) -> str:
    if isinstance(pool_cls, str):
        from celery.concurrency import ALIASES  # noqa: PLC0415

        return str(ALIASES.get(pool_cls, pool_cls))
    return f"{pool_cls.__module__}:{pool_cls.__qualname__}"


def check_pool(worker: Any) -> None:
    """Only prefork enforces both time limits (and gives a process per child to cap
    and to kill): refuse to start on any other pool."""
    name = pool_name(worker.pool_cls)
    if name != PREFORK:
        msg = (f"ksa workers need the prefork pool (soft and hard time limits, a memory "
               f"cap per child); refusing to start with pool {name!r}")
        log.critical("%s", msg)
        print(f"ksa: error: {msg}", file=sys.stderr)
        raise SystemExit(2)


def stored_specs(app: Celery) -> dict[str, PluginSpec]:
    """The plugins' configs with storage's overrides (defaults when storage is down)."""
    specs: dict[str, PluginSpec] = dict(app.ksa_specs)
    # the first call also migrates the schema: more time than one statement
    store = main_store(app)
    states, err = store.call("list_plugin_states", lambda s: s.list_plugin_states(),
                             timeout=3 * store.timeout)
    if err is not None or not states:
        return specs
    by_id = {s.plugin_id: s for s in states}
    for mtype, spec in specs.items():
        rec = by_id.get(spec.plugin_id)
        if rec is None or not rec.config:
            continue
        try:
            specs[mtype] = dataclasses.replace(
                spec, config=merge_config(spec.config, rec.config))
        except ValidationError as e:
            log.error("plugin %s: stored config ignored (%d errors)", spec.plugin_id,
                      e.error_count())
    return specs


def record_killed(app: Celery, task_name: str, task_id: str, args: Any, kwargs: Any,
                  exception: BaseException) -> None:
    """A hard time limit killed the child: keep the run as ``killed``. Runs in the
    worker's main process (from the pool's result handler): the run goes to the spool on
    local disk, never to the network here; the next run of any child writes it. Celery
    5.7 fires this twice: record_run is idempotent by task id."""
    mtype = task_name.split(".", 1)[1]
    spec = app.ksa_specs.get(mtype)
    raw = (kwargs or {}).get("target") or (args[0] if args else None)
    if spec is None or not isinstance(raw, dict):
        return
    try:
        target = MiddlewareTarget.model_validate({"type": mtype, **raw})
    except ValidationError:
        return
    cats = tuple((kwargs or {}).get("categories") or ())
    result = DiagnosticResult(
        plugin_id=spec.plugin_id, target_name=target.name, status=Status.UNKNOWN,
        started_at=utcnow(), duration=spec.hard_limit, categories=cats, outcome="killed",
        errors={"_run": f"killed at the hard time limit ({spec.hard_limit:g} s): "
                        f"{type(exception).__name__}"})
    main_store(app).keep(SpooledRun(task_id, target.key, spec.plugin_id, cats, result, None))
    log.warning("task %s %s on %s killed at the hard time limit (run spooled)", task_id,
                spec.plugin_id, target.key)


def record_action_killed(app: Celery, task_name: str, task_id: str,
                         exception: BaseException) -> None:
    """An action's child died (the hard time limit, a signal): its audit row, written
    ``started`` before the action ran, is closed as ``killed`` with the reason and the
    time it ran. Main process: the end goes to the spool on local disk, never to the
    network; the next storage write of any child (or the next start or warm shutdown)
    writes it. Fired twice by Celery 5.7: the second finds the row closed."""
    spec = app.ksa_specs.get(task_name.split(".", 1)[1])
    if isinstance(exception, TimeLimitExceeded):
        hard = spec.action_hard_limit if spec is not None else None
        why = ("killed at the hard time limit" + (f" ({hard:g} s)" if hard else "")
               + f": {type(exception).__name__}")
    else:
        why = f"worker child lost: {exception}"
    main_store(app).keep(SpooledActionEnd(task_id, "killed", why, utcnow()))
    log.warning("task %s %s: %s (audit end spooled)", task_id, task_name, why)


def close_abandoned(app: Celery) -> None:
    """Audit rows still ``started`` long past the longest action hard limit become
    ``abandoned`` (bounded call; at start, before the pool runs anything)."""
    hard = max((s.action_hard_limit for s in app.ksa_specs.values()), default=0.0)
    n, _ = main_store(app).call(
        "close_abandoned_actions",
        lambda s: s.close_abandoned_actions(hard + ABANDON_MARGIN))
    if n:
        log.warning("worker start: %d actions left started closed as abandoned", n)


def flush_spool(app: Celery, when: str) -> None:
    store = main_store(app)
    if when == "start" and store.spool is not None:
        try:  # a writer that died mid-write left its temporary file
            store.spool.clean()
        except OSError as e:
            log.error("spool %s cannot be cleaned: %s", store.spool.dir, e)
    report = store.flush(budget=FLUSH_BUDGET)
    if report is not None and (report.left or report.error):
        log.warning("worker %s: %d spooled runs left for later (%s)", when, report.left,
                    report.error or "out of time")


def connect(app: Celery) -> None:
    @signals.worker_init.connect(weak=False)
    def on_worker_init(sender: Any = None, **_: Any) -> None:
        check_pool(sender)
        specs = stored_specs(app)
        app.ksa_specs = specs
        apply_limits(app, specs)
        flush_spool(app, "start")
        close_abandoned(app)

    @signals.worker_process_init.connect(weak=False)
    def on_process_init(**_: Any) -> None:
        # Must finish within 4 s or billiard kills the child: no I/O here, only drop
        # the pooled connections inherited from the parent (their sockets are shared).
        t0 = time.perf_counter()
        if _main_store is not None:
            _main_store.dispose()
        rt = tasks.current_runtime()
        if rt is not None:
            rt.store.dispose()
        log.debug("child init in %.3fs", time.perf_counter() - t0)

    @signals.worker_ready.connect(weak=False)
    def on_worker_ready(**_: Any) -> None:
        # here, not in worker_init: Celery sets up the worker's logging after worker_init,
        # and lines logged before it never reach the worker's log
        vis = app.conf.broker_transport_options.get("visibility_timeout")
        if vis is not None:
            log.info("broker visibility timeout %ss (longest hard limit x (prefetch + 1) + "
                     "margin)", vis)
        for s in app.ksa_specs.values():
            log.info("plugin %s (%s): soft %gs, hard %gs, memory cap %s MB", s.plugin_id,
                     s.mtype, s.soft_limit, s.hard_limit, s.config.memory_limit_mb)
        store = main_store(app)
        if store.spool is not None:
            log.info("runs kept while storage is unreachable: spool %s (%d now)",
                     store.spool.dir, len(store.spool))

    @signals.worker_shutdown.connect(weak=False)
    def on_worker_shutdown(**_: Any) -> None:
        # the pool has stopped: runs kept by its children are on disk, written now
        flush_spool(app, "shutdown")

    @signals.task_failure.connect(weak=False)
    def on_task_failure(sender: Any = None, task_id: str = "", exception: BaseException | None = None,
                        args: Any = None, kwargs: Any = None, **_: Any) -> None:
        name = getattr(sender, "name", "") or ""
        if isinstance(exception, TimeLimitExceeded) and name.startswith("diagnose."):
            record_killed(app, name, task_id, args, kwargs, exception)
        elif isinstance(exception, TimeLimitExceeded | WorkerLostError) \
                and name.startswith("action."):
            record_action_killed(app, name, task_id, exception)
