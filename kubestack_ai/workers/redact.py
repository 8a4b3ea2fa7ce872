"""What a worker reports about a task never shows a literal secret.

A task's arguments may hold a literal password that a user sent by mistake (the task
refuses it, without echo). Celery would still show it: in the message's and the request's ``argsrepr`` /
``kwargsrepr`` (the task events Flower's task page reads, the worker's log lines) and in
the prefork pool's DEBUG ``TaskPool: Apply`` line (the raw message body). The app sends
with :class:`RedactingAMQP`, workers use :class:`RedactingRequest` for every task and
:class:`RedactingFilter` on the loggers that print arguments: a secret-looking field's
value becomes ``"<redacted>"`` unless it is a secret reference (``env:NAME``,
``file:/path``), which is shown as it is.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from celery.app.amqp import AMQP
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from kubestack_ai.plugins.models import SECRET_REF, is_secret_field

REDACTED = "<redacted>"

# a quoted key that looks secret, then a quoted value (JSON or a Python repr)
_PAIR = re.compile(
    r"""(?P<k>(?P<q>["'])(?P<key>[^"'\\]{1,100})(?P=q)\s*:\s*)(?P<vq>["'])(?P<v>(?:\\.|(?!(?P=vq)).)*)(?P=vq)""")


def redact(value: Any) -> Any:
    """A copy of ``value`` with literal secrets in secret-looking fields replaced."""
    if isinstance(value, dict):
        return {k: _field(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, tuple):
        return tuple(redact(v) for v in value)
    return value


def _field(key: object, value: Any) -> Any:
    if not is_secret_field(key) or value is None:
        return redact(value)
    if isinstance(value, str) and SECRET_REF.match(value):
        return value
    return REDACTED


def redact_text(text: str) -> str:
    """The same in text that holds JSON or Python reprs (a log line's message)."""
    def sub(m: re.Match[str]) -> str:
        if not is_secret_field(m.group("key")) or SECRET_REF.match(m.group("v")):
            return m.group(0)
        return f"{m.group('k')}{m.group('vq')}{REDACTED}{m.group('vq')}"
    return _PAIR.sub(sub, text)


class RedactingRequest(Request):
    """Celery's request, with the arguments' reprs redacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self._argsrepr = saferepr(redact(self.args))
            self._kwargsrepr = saferepr(redact(self.kwargs))
        except Exception:  # a body we cannot walk: show nothing rather than the secret
            self._argsrepr = self._kwargsrepr = REDACTED


class RedactingAMQP(AMQP):
    """The app's message factory: what a sender puts in a task's ``argsrepr`` /
    ``kwargsrepr`` (and its ``task-sent`` event) is redacted too (``celery call``)."""

    def as_task_v2(self, task_id: str, name: str, args: Any = None, kwargs: Any = None,
                   *rest: Any, **options: Any) -> Any:
        if options.get("argsrepr") is None:
            options["argsrepr"] = saferepr(redact(args or ()), self.argsrepr_maxsize)
        if options.get("kwargsrepr") is None:
            options["kwargsrepr"] = saferepr(redact(kwargs or {}), self.kwargsrepr_maxsize)
        return super().as_task_v2(task_id, name, args, kwargs, *rest, **options)


class RedactingFilter(logging.Filter):
    """Redacts secret-looking fields in a log record's message (the pool logs raw bodies)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 (a record that cannot format is left as it is)
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install_log_filter() -> None:
    """On the loggers that print task arguments (idempotent)."""
    for name in ("celery.pool", "celery.worker.strategy", "celery.app.trace"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
