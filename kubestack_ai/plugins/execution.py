"""Running a plugin's action: the one path the CLI (``ksa action``) and the Celery task
(``action.<type>``) share, through :meth:`PluginManager.execute`.

In order: the action must be declared by the plugin and allowed by its config; a
dangerous one must be allowed by name (``allow``, the target's ``allow_actions`` or the
config's ``allowed_actions``); a dry run needs an action that can do one; the parameters
must match the action's schema. Then the attempt is written to the audit sink *before*
anything is sent to the middleware: a sink that cannot write refuses the action (fail
closed). The action runs under the plugin's connect and execute time limits; its result
(or error) and duration complete the audit record. Refusals are audited too.

Parameters and results are redacted before they reach the audit log or a log line
(:func:`redact`, the one redaction of ``plugins/redaction.py``): a value whose key names
a secret, and the value a ``config_set``-like action sets on a setting whose name does.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from .configschema import problems
from .errors import ActionRefusedError, ConfigError, PluginError
from .logcontext import get_logger
from .models import MiddlewareTarget, PluginInfo, utcnow
from .redaction import redact_value
from .sandbox import Outcome

log = get_logger(__name__)

ActionOutcome = Literal["started", "refused", "failed", "succeeded", "killed", "abandoned"]
"""started: written before the action ran. A record left so (the process died mid-action)
is closed by someone else: killed (the worker saw its child die), abandoned (a sweep,
past any time limit)."""



class ActionSpec(BaseModel):
    """What ``ksa plugin info`` lists for an action, and what its parameters must be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    dangerous: bool = False
    dry_run: bool = False
    """The action can say what it would do without doing it (``params["dry_run"]``)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """JSON Schema of each parameter, by name; ``required`` lists the mandatory ones."""
    required: tuple[str, ...] = ()


class ActionRecord(BaseModel):
    """One attempt, as the audit log keeps it (never a secret)."""

    model_config = ConfigDict(frozen=True)

    at: dt.datetime
    who: str
    plugin_id: str
    plugin_version: str = ""
    target: str
    """The target's key (``redis:cache-1``)."""
    endpoints: tuple[str, ...] = ()
    action: str
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = False
    allowed_by: tuple[str, ...] = ()
    """The dangerous actions this attempt was allowed by name (``--allow``)."""
    outcome: ActionOutcome
    error: str | None = None
    result: Any = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "succeeded"


class AuditSink(Protocol):
    """Where attempts are written. ``begin`` raising refuses the action (fail closed)."""

    def begin(self, record: ActionRecord) -> Any: ...

    def end(self, handle: Any, record: ActionRecord) -> None: ...


@dataclass
class ActionResult(Outcome[Any]):
    """The sandbox's outcome plus the audit record and whether it could be written."""

    record: ActionRecord | None = None
    audit_handle: Any = None
    """What the audit sink's ``begin`` returned (the Store's row id)."""
    audit_error: str | None = None


def specs_of(plugin: Any, info: PluginInfo) -> dict[str, ActionSpec]:
    """Every declared action's spec: the plugin's own (``action_specs()``), else a bare
    one (no parameters checked beyond the plugin's own code)."""
    own: Mapping[str, ActionSpec] = {}
    describe = getattr(plugin, "action_specs", None)
    if callable(describe):
        own = describe() or {}
    out = {}
    for name in info.actions:
        spec = own.get(name) or ActionSpec(name=name)
        out[name] = spec.model_copy(update={"dangerous": name in info.dangerous_actions})
    return out


def check_params(plugin_id: str, spec: ActionSpec, params: Mapping[str, Any]) -> None:
    """Unknown, missing or mistyped parameters: one ConfigError naming all of them."""
    if not spec.params and not spec.required:
        return
    found = problems(spec.params, params, required=spec.required, noun="parameter")
    if found:
        raise ConfigError(f"plugin {plugin_id!r}: action {spec.name!r}: " + "; ".join(found))


def redact(value: Any) -> Any:
    """A JSON-ready copy without secrets (the one redaction, ``plugins/redaction.py``):
    values under secret-looking keys, and the values set on a setting with a
    secret-looking ``name`` (``config_set name=requirepass value=...``)."""
    return _jsonable(redact_value(value))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def allowing(target: MiddlewareTarget, allow: Iterable[str]) -> MiddlewareTarget:
    extra = tuple(a for a in allow if a not in target.allow_actions)
    if not extra:
        return target
    return target.model_copy(update={"allow_actions": (*target.allow_actions, *extra)})


def refusal_outcome(error: PluginError) -> ActionOutcome:
    """A refusal or a bad parameter changed nothing: refused. Anything else: failed."""
    return "refused" if isinstance(error, (ActionRefusedError, ConfigError)) else "failed"


def finish(sink: AuditSink | None, handle: Any, record: ActionRecord) -> str | None:
    """Write the final record to the sink; the sink's error, if any."""
    if sink is None:
        return None
    try:
        sink.end(handle, record)
    except Exception as e:  # the action already ran: say the record is incomplete
        err = f"{type(e).__name__}: {e}"
        log.error("audit: the result of action %s was not written: %s", record.action, err)
        return err
    return None


class Clock:
    """Start time and duration of one attempt."""

    def __init__(self) -> None:
        self.at = utcnow()
        self._t0 = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self._t0, 6)


__all__ = ["ActionOutcome", "ActionRecord", "ActionResult", "ActionSpec", "AuditSink",
           "allowing", "check_params", "redact", "specs_of"]
