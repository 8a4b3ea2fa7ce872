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
from contextvars import ContextVar, Token

_plugin_id: ContextVar[str | None] = ContextVar("ksa_plugin_id", default=None)
_target_key: ContextVar[str | None] = ContextVar("ksa_target_key", default=None)


class log_context:  # noqa: N801 - used as a function: with log_context(...):
    """Within the block, log lines carry ``plugin_id`` and ``target`` (a target key,
    ``MiddlewareTarget.key``). An argument left None keeps the value set outside.

    A class, not a generator context manager: every plugin call opens one or more, and
    the generator machinery cost microseconds each."""

    __slots__ = ("_plugin", "_plugin_token", "_target", "_target_token")

    def __init__(self, plugin_id: str | None = None, target: str | None = None) -> None:
        self._plugin, self._target = plugin_id, target
        self._plugin_token: Token[str | None] | None = None
        self._target_token: Token[str | None] | None = None

    def __enter__(self) -> None:
        if self._plugin is not None:
            self._plugin_token = _plugin_id.set(self._plugin)
        if self._target is not None:
            self._target_token = _target_key.set(self._target)

    def __exit__(self, *exc: object) -> None:
        if self._target_token is not None:
            _target_key.reset(self._target_token)
        if self._plugin_token is not None:
            _plugin_id.reset(self._plugin_token)


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
