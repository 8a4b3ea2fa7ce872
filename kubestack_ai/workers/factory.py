"""The Celery app: ``celery -A kubestack_ai.workers worker``.

Tasks ``diagnose.<type>``, ``health.<type>`` and ``action.<type>`` are registered here, at import, for
every middleware type a plugin provides (and redis/kafka/mysql always), each routed to
a queue named after its type so operators can scale them apart
(``celery -A kubestack_ai.workers worker -Q kafka``). A worker consumes every queue by default.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]  # untyped

from .catalog import PluginSpec, discover, task_types
from .settings import Settings, mask_url

log = logging.getLogger(__name__)

VISIBILITY_MARGIN = 10.0
"""Seconds the Redis visibility timeout keeps above the longest time a late-acked message
can stay unacknowledged, so a task still queued or running is never handed to a second
worker."""


DEFAULT_HARD_LIMIT = 40.0
"""The default hard limit (diagnose 30 s + grace 10 s)."""


def visibility_floor(longest_hard_limit: float, prefetch: int) -> float:
    """A reserved message waits behind up to ``prefetch`` others in a child's share of
    the prefetch buffer, each at most the hard limit, then runs up to the hard limit."""
    return longest_hard_limit * (max(prefetch, 1) + 1) + VISIBILITY_MARGIN


def broker_options(settings: Settings, longest_hard_limit: float) -> dict[str, Any]:
    if settings.broker_is_filesystem:
        d = settings.broker_dir
        for sub in ("queue", "processed", "control"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        # control: the fanout exchange table (remote control, events); kombu's default
        # is ./control in whatever directory the process was started from
        return {"data_folder_in": str(d / "queue"), "data_folder_out": str(d / "queue"),
                "processed_folder": str(d / "processed"), "control_folder": str(d / "control"),
                "store_processed": False, "polling_interval": 0.1}
    floor = visibility_floor(longest_hard_limit, settings.prefetch)
    vis = settings.visibility_timeout
    if vis is not None and vis < floor:
        log.warning("KSA_VISIBILITY_TIMEOUT=%s is below the longest hard time limit x "
                    "(prefetch + 1) + %ss; using %s", vis, VISIBILITY_MARGIN, floor)
    vis = max(vis or 0.0, floor)
    # sweep for messages of dead workers often enough to honour a short timeout
    return {"visibility_timeout": vis,
            "unacked_restore_interval": max(1, min(10, int(vis // 4))),
            "unacked_restore_throttle": 1}


def longest_hard_limit(specs: Mapping[str, PluginSpec]) -> float:
    """Types without a plugin here answer at once; only plugins' limits count."""
    return max([s.hard_limit for s in specs.values()], default=DEFAULT_HARD_LIMIT)


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.from_env()
    specs = discover(settings.plugin_modules, settings.environ)
    types = task_types(specs)
    longest = longest_hard_limit(specs)
    if settings.result_backend.startswith("file://"):
        (settings.home / "results").mkdir(parents=True, exist_ok=True)

    app = Celery("workers", broker=settings.broker_url, backend=settings.result_backend,
                 set_as_current=True)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        enable_utc=True, timezone="UTC",
        worker_pool="prefork",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        # a child that died is reported lost (and its task requeued) after this wait for
        # a result it may have sent; Celery's 10 s would let a short hard limit fire
        # first, and the task would be acknowledged as timed out instead of redelivered
        worker_lost_wait=2.0,
        worker_prefetch_multiplier=settings.prefetch,
        broker_transport_options=broker_options(settings, longest),
        result_backend_transport_options=(
            broker_options(settings, longest) if settings.broker_is_redis else {}),
        broker_connection_retry_on_startup=True,
        result_expires=3600,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        worker_hijack_root_logger=True,
        task_queues=[Queue(t, routing_key=t) for t in types] + [Queue("celery")],  # type: ignore[no-untyped-call]
        task_default_queue="celery",
        task_routes={f"{kind}.{t}": {"queue": t, "routing_key": t}
                     for kind in ("diagnose", "health", "action") for t in types},
        beat_scheduler="kubestack_ai.scheduler.beat:FleetScheduler",
        beat_max_loop_interval=5,
    )
    app.ksa_settings = settings
    app.ksa_specs = specs
    from . import signals, tasks  # noqa: PLC0415 (they need the app)

    tasks.register(app, specs, types)
    signals.connect(app)
    log.debug("app on broker %s with types %s", mask_url(settings.broker_url), ", ".join(types))
    return app


def apply_limits(app: Celery, specs: dict[str, PluginSpec]) -> None:
    """Set each task's soft/hard time limits from its plugin's (effective) config, and
    keep the broker's visibility timeout above the longest of them."""
    settings: Settings = app.ksa_settings
    if settings.broker_is_redis:
        opts = broker_options(settings, longest_hard_limit(specs))
        app.conf.broker_transport_options = opts
        app.conf.result_backend_transport_options = opts
    for mtype, spec in specs.items():
        for name, soft, hard in ((f"diagnose.{mtype}", spec.soft_limit, spec.hard_limit),
                                 (f"health.{mtype}", spec.health_soft_limit,
                                  spec.health_hard_limit),
                                 (f"action.{mtype}", spec.action_soft_limit,
                                  spec.action_hard_limit)):
            task = app.tasks.get(name)
            if task is not None:
                task.soft_time_limit = soft
                task.time_limit = hard
