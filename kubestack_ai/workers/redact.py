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
  (:func:`plugins.redaction.install_log_redaction`, called by the app's factory).
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.app.amqp import AMQP
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from kubestack_ai.plugins.redaction import REDACTED, redact_value


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
