"""What a worker or beat reports about a task never shows a literal secret.

A task's arguments may hold a literal password that a user sent by mistake (the task
refuses it, without echo). Celery would still show it: in the message's and the
request's ``argsrepr`` / ``kwargsrepr`` (the task events Flower's task page reads, the
worker's log lines) and in its own DEBUG lines that print the raw message (the prefork
pool's ``TaskPool: Apply``, an unknown or invalid message). So, with the one redaction
of ``plugins/redaction.py``:

- the app sends with :class:`RedactingAMQP` (what ``celery call`` and beat put in a
  message's reprs);
- every task of the app is a :class:`RedactingTask`, whose request is a
  :class:`RedactingRequest` (the reprs a worker shows, whoever sent the message);
- every log record of the process is redacted when it is made
  (:func:`install_log_redaction`: a record factory, so that no logger or handler,
  Celery's, a plugin's or one added later, is left out).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.app.amqp import AMQP
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from kubestack_ai.plugins.redaction import REDACTED, redact_text, redact_value


class RedactingRequest(Request):
    """Celery's request, with the arguments' reprs redacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self._argsrepr = saferepr(redact_value(self.args))
            self._kwargsrepr = saferepr(redact_value(self.kwargs))
        except Exception:  # a body we cannot walk: show nothing rather than the secret
            self._argsrepr = self._kwargsrepr = REDACTED


class RedactingAMQP(AMQP):
    """The app's message factory: what a sender puts in a task's ``argsrepr`` /
    ``kwargsrepr`` (and its ``task-sent`` event) is redacted too (``celery call``)."""

    def as_task_v2(self, task_id: str, name: str, args: Any = None, kwargs: Any = None,
                   *rest: Any, **options: Any) -> Any:
        if options.get("argsrepr") is None:
            options["argsrepr"] = saferepr(redact_value(args or ()), self.argsrepr_maxsize)
        if options.get("kwargsrepr") is None:
            options["kwargsrepr"] = saferepr(redact_value(kwargs or {}), self.kwargsrepr_maxsize)
        return super().as_task_v2(task_id, name, args, kwargs, *rest, **options)


class RedactingTask(Task):
    """The app's task class (every task: diagnose, health, action, retention...): its
    request redacts the reprs a worker reports, whatever the sender put there."""

    Request = "kubestack_ai.workers.redact:RedactingRequest"


def redact_record(record: logging.LogRecord) -> None:
    """Hide the secrets of a record's message and traceback text (in place)."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 (a record that cannot format is left to the handler)
        return
    redacted = redact_text(message)
    if redacted != message:
        record.msg, record.args = redacted, ()
    if record.exc_info and not record.exc_text:
        # formatters use a record's exc_text when it is set
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))


def install_log_redaction() -> None:
    """Every log record of this process is redacted as it is made (idempotent; kept by
    forked children). A record factory rather than a filter: a logger's filter misses
    its children's records, and a handler's misses handlers added later."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "ksa_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory.ksa_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
