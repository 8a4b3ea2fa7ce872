"""The data contract shared by the CLI, the Celery tasks and storage.

Every model round-trips through JSON exactly: ``Model.model_validate_json(m.model_dump_json()) == m``.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import Enum, IntEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from .secrets import SECRET_FIELD, SECRET_REF, is_secret_field  # noqa: F401 (re-exported: defined once, in secrets.py)

API_VERSION = "1.0"
"""The plugin API this framework implements; plugins declare the one they were written for."""


class _Level(IntEnum):
    """An ordered level: members compare and ``max()`` by declaration order (IntEnum),
    while people, JSON, storage and the task envelope see the lower-case name
    (``"warning"``), as they always have. Parsing accepts the name or the member."""

    def __str__(self) -> str:
        return self.name.lower()

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @classmethod
    def _missing_(cls, value: object) -> _Level | None:
        """``Status("warning")``: a member by its name, as stored and shown."""
        return next((m for m in cls if str(m) == value), None)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler
                                     ) -> core_schema.CoreSchema:
        names = [str(m) for m in cls]

        def parse(value: object) -> _Level:
            level = value if isinstance(value, cls) else cls._missing_(value)
            if level is None:
                raise ValueError(f"input should be {', '.join(map(repr, names))}")
            return level

        return core_schema.no_info_plain_validator_function(
            parse, json_schema_input_schema=core_schema.literal_schema(names),
            serialization=core_schema.plain_serializer_function_ser_schema(str))


class PluginType(str, Enum):
    MIDDLEWARE = "middleware"
    DIAGNOSTIC = "diagnostic"
    ACTION = "action"


class PluginState(str, Enum):
    UNLOADED = "unloaded"
    LOADED = "loaded"
    INITIALIZED = "initialized"
    RUNNING = "running"
    STOPPED = "stopped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


class Severity(_Level):
    INFO = 0
    WARNING = 1
    CRITICAL = 2


class Status(_Level):
    """Ordered so that ``max()`` gives the overall status: unknown sits below warning,
    because a finding that was read outweighs one that could not be."""

    HEALTHY = 0
    UNKNOWN = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]


_EXIT_CODES = {Status.HEALTHY: 0, Status.WARNING: 1, Status.CRITICAL: 2, Status.UNKNOWN: 3}


class Mode(str, Enum):
    STANDALONE = "standalone"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


_FROZEN = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class PluginInfo(BaseModel):
    model_config = _FROZEN

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)
    name: str
    version: str
    type: PluginType = PluginType.MIDDLEWARE
    description: str = ""
    capabilities: tuple[str, ...] = ()
    author: str = ""
    actions: tuple[str, ...] = ()
    """Actions ``execute`` may run. Anything else is refused by the sandbox."""
    dangerous_actions: tuple[str, ...] = ()
    """Declared actions that destroy data or change configuration: refused unless the
    plugin config or the target allows them by name."""
    api_version: str = API_VERSION


class Timeouts(BaseModel):
    """Seconds. ``diagnose`` is also the Celery soft limit; the hard limit adds ``grace``."""

    model_config = _FROZEN

    init: float = Field(10.0, gt=0)
    start: float = Field(10.0, gt=0)
    stop: float = Field(10.0, gt=0)
    connect: float = Field(5.0, gt=0)
    diagnose: float = Field(30.0, gt=0)
    health_check: float = Field(5.0, gt=0)
    execute: float = Field(30.0, gt=0)
    grace: float = Field(10.0, gt=0)


class PluginConfig(BaseModel):
    model_config = _FROZEN

    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    thresholds: dict[str, float] = Field(default_factory=dict)
    allowed_actions: tuple[str, ...] | None = None
    """None: every declared, non-dangerous action. A tuple: only these (dangerous ones included)."""
    memory_limit_mb: int | None = Field(1024, gt=0)
    """Address-space cap of a worker child running this plugin (RLIMIT_AS); of its plugin
    host when isolated (cgroup memory limit and RLIMIT_AS)."""
    isolation: Literal["process", "none"] | None = None
    """Where the plugin's code runs: ``process`` (a plugin host of its own, the default
    for external plugins), ``none`` (in the worker, the default for builtins; refused for
    an external plugin unless KSA_ISOLATION_ALLOW_NONE names it). docs/isolation.md."""
    cpu_limit_pct: int | None = Field(None, gt=0)
    """CPU share of an isolated plugin's host (100: one core), by cgroup; None: no cap
    beyond the per-run CPU-time limit."""
    pids_max: int | None = Field(64, gt=0)
    """Processes and threads an isolated plugin's host may have (cgroup, else RLIMIT_NPROC)."""

    @field_validator("options")
    @classmethod
    def _secret_options_are_refs(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_secret_options(v)


def _check_secret_options(options: dict[str, Any], where: str = "options") -> dict[str, Any]:
    """Every secret-carrying option, nested in dicts and lists too, holds a reference (or
    nothing)."""
    for key, value in options.items():
        _check_option(value, f"{where}.{key}", is_secret_field(key))
    return options


def _check_option(value: Any, field: str, secret: bool) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_option(v, f"{field}.{k}", secret or is_secret_field(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_option(v, f"{field}[{i}]", secret)
    elif secret and value is not None:
        if not isinstance(value, str):
            raise ValueError(f"{field} must be a secret reference (env:NAME or "
                             "file:/absolute/path), never the secret itself")
        _check_ref(value, field)


def _check_ref(value: str | None, field: str) -> str | None:
    if value is not None and not SECRET_REF.match(value):
        raise ValueError(
            f"{field} must be a secret reference (env:NAME or file:/absolute/path), "
            "never the secret itself"
        )
    return value


class Auth(BaseModel):
    model_config = _FROZEN

    username: str | None = None
    password: str | None = None
    """A secret reference: ``env:NAME`` or ``file:/path``."""
    mechanism: str | None = None
    """SASL mechanism where the middleware has several (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)."""

    @field_validator("password")
    @classmethod
    def _password_is_ref(cls, v: str | None) -> str | None:
        return _check_ref(v, "auth.password")


class TLS(BaseModel):
    model_config = _FROZEN

    enabled: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = None
    verify: bool = True
    server_hostname: str | None = None

    @field_validator("key_password")
    @classmethod
    def _key_password_is_ref(cls, v: str | None) -> str | None:
        return _check_ref(v, "tls.key_password")


ENDPOINT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[::1]:port"`` -> (host, port)."""
    m = ENDPOINT.match(endpoint)
    if not m:
        raise ValueError(f"endpoint {endpoint!r} is not host:port")
    port = int(m.group(2))
    if not 0 < port < 65536:
        raise ValueError(f"endpoint {endpoint!r}: port {port} out of range 1-65535")
    return m.group(1).strip("[]"), port


class MiddlewareTarget(BaseModel):
    model_config = _FROZEN

    type: str = Field(min_length=1)
    name: str = ""
    endpoints: tuple[str, ...] = Field(min_length=1)
    mode: Mode = Mode.STANDALONE
    auth: Auth | None = None
    tls: TLS | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    """Per-target options, e.g. ``master_name`` for Sentinel, ``db``."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Per-target thresholds; override the plugin's."""
    allow_actions: tuple[str, ...] = ()
    """Dangerous actions this target allows by name."""

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for e in v:
            split_endpoint(e)
        return v

    @field_validator("options")
    @classmethod
    def _secret_options_are_refs(cls, v: dict[str, Any]) -> dict[str, Any]:
        return _check_secret_options(v)

    @model_validator(mode="after")
    def _default_name(self) -> MiddlewareTarget:
        if not self.name:
            # the key then reads redis:127.0.0.1:6379, not redis:redis://127.0.0.1:6379
            object.__setattr__(self, "name", ",".join(self.endpoints))
        return self

    @property
    def key(self) -> str:
        """Identity of the target for caches and history (no secrets in it)."""
        return f"{self.type}:{self.name}"


class DiagnoseOptions(BaseModel):
    model_config = _FROZEN

    categories: tuple[str, ...] = ()
    """Empty: every category the plugin has."""
    history: tuple[Snapshot, ...] = ()
    """Metrics of earlier runs of this target, oldest first, when storage provides them."""


class Snapshot(BaseModel):
    model_config = _FROZEN

    at: dt.datetime
    metrics: dict[str, Any] = Field(default_factory=dict)


class Finding(BaseModel):
    model_config = _FROZEN

    code: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    category: str
    severity: Severity
    title: str
    evidence: dict[str, Any] = Field(min_length=1)
    """The numbers the finding was decided on (and the threshold): never empty."""
    suggestion: str = Field(min_length=1)
    """What an operator can do about it: never empty."""


RunOutcome = Literal["completed", "timed_out", "killed", "failed", "cached"]
"""How a run ended: completed (status says how the target is), timed_out (soft limit or
deadline: partial findings), killed (hard limit or memory cap), failed (plugin error),
cached (served from storage without touching the middleware)."""


class DiagnosticResult(BaseModel):
    """What one run found. Frozen like the other models: a result that changes on its
    way (served from the cache, stopped by a time limit) is a copy, ``model_copy``."""

    model_config = _FROZEN

    plugin_id: str
    plugin_version: str = ""
    target_name: str
    status: Status
    started_at: dt.datetime
    duration: float
    findings: list[Finding] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict)
    """Per category: what could not be read and why. ``_run`` for the run itself."""
    categories: tuple[str, ...] = ()
    outcome: RunOutcome = "completed"
    resources: dict[str, Any] | None = None
    """What an isolated run cost its plugin host (``cpu_seconds``, ``peak_rss_mb``...) and
    what the host refused or cleaned up; None for a run in the worker itself."""

    @staticmethod
    def status_of(findings: list[Finding], errors: dict[str, str]) -> Status:
        worst = max((f.severity for f in findings), default=None)
        if worst is Severity.CRITICAL:
            return Status.CRITICAL
        if worst is Severity.WARNING:
            return Status.WARNING
        if errors:
            return Status.UNKNOWN
        return Status.HEALTHY





def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
