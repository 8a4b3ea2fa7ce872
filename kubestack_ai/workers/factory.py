"""The Celery app: ``celery -A kubestack_ai.workers worker``.

Tasks ``diagnose.<type>``, ``health.<type>`` and ``action.<type>`` are registered here, at import, for
every middleware type a plugin provides (and redis/kafka/mysql always), each routed to
a queue named after its type so operators can scale them apart
(``celery -A kubestack_ai.workers worker -Q kafka``). A worker consumes every queue by default.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]  # untyped

from kubestack_ai.plugins.logcontext import get_logger
from kubestack_ai.plugins.redaction import install_log_redaction

from .catalog import discover, task_types
from .fsbroker import transport_url
from .limits import broker_options, longest_hard_limit
from .settings import Settings, mask_url

log = get_logger(__name__)


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings.from_env()
    specs = discover(settings.plugin_modules, settings.environ)
    types = task_types(specs)
    longest = longest_hard_limit(specs)
    if settings.result_backend.startswith("file://"):
        (settings.home / "results").mkdir(parents=True, exist_ok=True)

    app = Celery("workers", broker=transport_url(settings), backend=settings.result_backend,
                 set_as_current=True, amqp="kubestack_ai.workers.redact:RedactingAMQP",
                 task_cls="kubestack_ai.workers.redact:RedactingTask")
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
    install_log_redaction()  # every log line of the process (kept by forked children)
    app.ksa_settings = settings
    app.ksa_specs = specs
    from . import signals, tasks  # noqa: PLC0415 (they need the app)

    tasks.register(app, specs, types)
    signals.connect(app)
    log.debug("app on broker %s with types %s", mask_url(settings.broker_url), ", ".join(types))
    return app
