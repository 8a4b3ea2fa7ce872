"""Plugin id and target key on every log line about a run.

The framework sets the context around every call for a run (load, init, start, stop,
connect, diagnose, execute, health check); the sandbox carries it into the thread the
plugin runs in. Loggers made by :func:`get_logger` (the framework's and the builtin
plugins') append it to each message and put it on the record as ``plugin_id`` and
``target_key`` (:class:`LogContextFilter`), so the line says which plugin on which
target, whatever the handler's format::

    connect failed: Connection refused [plugin=redis-diagnostics target=redis:cache-1]

Code above the framework (a Celery task, a web request) opens the same context with
:func:`log_context` and logs through :func:`get_logger` too. Values are ids and keys,
never secrets (a target key holds no credentials).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_plugin_id: ContextVar[str | None] = ContextVar("ksa_plugin_id", default=None)
_target_key: ContextVar[str | None] = ContextVar("ksa_target_key", default=None)


@contextmanager
def log_context(plugin_id: str | None = None, target: str | None = None) -> Iterator[None]:
    """Within the block, log lines carry ``plugin_id`` and ``target`` (a target key,
    ``MiddlewareTarget.key``). An argument left None keeps the value set outside."""
    tokens = [(var, var.set(value)) for var, value in ((_plugin_id, plugin_id),
                                                       (_target_key, target))
              if value is not None]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str | None]:
    """The context in force: ``{"plugin_id": ..., "target_key": ...}`` (None when unset)."""
    return {"plugin_id": _plugin_id.get(), "target_key": _target_key.get()}


class LogContextFilter(logging.Filter):
    """Puts the log context on a record: as fields (``record.plugin_id``,
    ``record.target_key``, None when unset) and at the end of its message. Added to
    each logger :func:`get_logger` makes; add it to a handler to give every logger's
    records the same (a client library's, say). A record gets it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "plugin_id"):
            return True
        ctx = current()
        record.plugin_id, record.target_key = ctx["plugin_id"], ctx["target_key"]
        parts = [f"{name}={value}" for name, value in (("plugin", ctx["plugin_id"]),
                                                        ("target", ctx["target_key"])) if value]
        if parts:
            suffix = f" [{' '.join(parts)}]"
            # %-formatted later with the record's args: a '%' in a name must stay literal
            record.msg = f"{record.msg}{suffix.replace('%', '%%') if record.args else suffix}"
        return True


_FILTER = LogContextFilter()


def get_logger(name: str) -> logging.Logger:
    """``log = get_logger(__name__)`` in the framework's and the builtin plugins' modules:
    the module's logger, its records carrying the log context."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, LogContextFilter) for f in logger.filters):
        logger.addFilter(_FILTER)
    return logger
