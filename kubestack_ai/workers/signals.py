"""Worker signal handlers: pool check, limits from storage, fork hygiene, killed runs."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from celery import Celery, signals
from celery.exceptions import TimeLimitExceeded
from pydantic import ValidationError

from kubestack_ai.plugins import DiagnosticResult, MiddlewareTarget, Status
from kubestack_ai.plugins.models import utcnow

from . import tasks
from .catalog import PluginSpec, merge_config
from .limits import apply_limits
from .store import SafeStore

log = logging.getLogger(__name__)

PREFORK = "celery.concurrency.prefork:TaskPool"

_main_store: SafeStore | None = None


def main_store() -> SafeStore:
    global _main_store
    if _main_store is None:
        _main_store = SafeStore(migrate=True)
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
    states, err = main_store().call("list_plugin_states", lambda s: s.list_plugin_states())
    if err is not None or not states:
        return specs
    by_id = {s.plugin_id: s for s in states}
    for mtype, spec in specs.items():
        rec = by_id.get(spec.plugin_id)
        if rec is None or not rec.config:
            continue
        try:
            specs[mtype] = PluginSpec(spec.plugin_id, mtype, merge_config(spec.config, rec.config))
        except ValidationError as e:
            log.error("plugin %s: stored config ignored (%d errors)", spec.plugin_id,
                      e.error_count())
    return specs


def record_killed(app: Celery, task_name: str, task_id: str, args: Any, kwargs: Any,
                  exception: BaseException) -> None:
    """A hard time limit killed the child: store the run as ``killed``. Runs in the
    worker's main process, and Celery 5.7 fires it twice: record_run is idempotent."""
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
    stored, err = main_store().record_run(task_id, target.key, spec.plugin_id, cats, result, None)
    log.warning("task %s %s on %s killed at the hard time limit (stored=%s%s)", task_id,
                spec.plugin_id, target.key, stored, f", {err}" if err else "")


def connect(app: Celery) -> None:
    @signals.worker_init.connect(weak=False)
    def on_worker_init(sender: Any = None, **_: Any) -> None:
        check_pool(sender)
        specs = stored_specs(app)
        app.ksa_specs = specs
        apply_limits(app, specs)
        vis = app.conf.broker_transport_options.get("visibility_timeout")
        if vis is not None:
            log.info("broker visibility timeout %ss (longest hard limit x (prefetch + 1) + "
                     "margin)", vis)
        for s in specs.values():
            log.info("plugin %s (%s): soft %gs, hard %gs, memory cap %s MB", s.plugin_id,
                     s.mtype, s.soft_limit, s.hard_limit, s.config.memory_limit_mb)

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

    @signals.task_failure.connect(weak=False)
    def on_task_failure(sender: Any = None, task_id: str = "", exception: BaseException | None = None,
                        args: Any = None, kwargs: Any = None, **_: Any) -> None:
        name = getattr(sender, "name", "") or ""
        if isinstance(exception, TimeLimitExceeded) and name.startswith("diagnose."):
            record_killed(app, name, task_id, args, kwargs, exception)
