"""The plugin contract: :class:`Plugin` and :class:`MiddlewarePlugin`.

The base class owns the run: timing, the deadline, error capture per category and
the overall status live here, once. A plugin author writes ``connect``, ``disconnect``
and one method per diagnostic category, marked with :func:`category`::

    class MyPlugin(MiddlewarePlugin):
        @category("memory")
        def check_memory(self, run: Run) -> None:
            used = ...
            run.metric("used_memory", used)
            if used > run.threshold("memory_usage_pct", 80):
                run.finding("my.memory.usage_high", Severity.WARNING, "Memory above 80%",
                            evidence={"used": used}, suggestion="...")
"""

from __future__ import annotations

import abc
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from . import secrets
from .configschema import problems
from .deadline import Deadline
from .errors import ConfigError, DeadlineExceeded
from .execution import ActionSpec
from .logcontext import get_logger
from .models import (
    DiagnoseOptions,
    DiagnosticResult,
    Finding,
    MiddlewareTarget,
    PluginConfig,
    PluginInfo,
    Severity,
    Snapshot,
    utcnow,
)

log = get_logger(__name__)

_INTERRUPTS: list[type[BaseException]] = []


def register_interrupt(exc: type[BaseException]) -> None:
    """Make ``exc`` stop a diagnosis instead of being recorded as a category error.

    The worker registers Celery's SoftTimeLimitExceeded (an Exception, which a category
    would otherwise swallow): the run stops, and what it had found is returned as
    ``outcome="timed_out"``. The framework itself knows nothing of Celery.
    """
    if exc not in _INTERRUPTS:
        _INTERRUPTS.append(exc)

_F = TypeVar("_F", bound=Callable[..., Any])


def category(name: str) -> Callable[[_F], _F]:
    """Mark a method ``(self, run: Run) -> None`` as the check of one diagnostic category."""

    def mark(fn: _F) -> _F:
        fn.__ksa_category__ = name  # type: ignore[attr-defined]
        return fn

    return mark


class Plugin(abc.ABC):
    """A plugin: metadata and lifecycle. Every call receives a :class:`Deadline`."""

    config: PluginConfig

    def __init__(self) -> None:
        self.config = PluginConfig()

    @abc.abstractmethod
    def info(self) -> PluginInfo:
        """Who the plugin is and what it can do; cheap, imports nothing heavy."""

    def init(self, deadline: Deadline, config: PluginConfig) -> None:
        """Validate and keep the config. Override to check options; call super()."""
        self.config = config

    def start(self, deadline: Deadline) -> None:
        """Start background work, if any."""

    def stop(self, deadline: Deadline) -> None:
        """Release every resource the plugin holds."""

    def health_check(self, deadline: Deadline) -> None:
        """Raise when the plugin itself is unhealthy."""

    def option(self, name: str, default: Any = None) -> Any:
        return self.config.options.get(name, default)


class MiddlewarePlugin(Plugin):
    """A plugin that diagnoses one kind of middleware."""

    _categories: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cats: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                name = getattr(value, "__ksa_category__", None)
                if name:
                    cats[name] = attr
        cls._categories = cats

    def __init__(self) -> None:
        super().__init__()
        self.target: MiddlewareTarget | None = None

    @abc.abstractmethod
    def middleware_type(self) -> str:
        """The middleware this plugin diagnoses: ``redis``, ``kafka``, ``mysql``..."""

    def supported_versions(self) -> list[str]:
        return []

    @classmethod
    def categories(cls) -> tuple[str, ...]:
        return tuple(cls._categories)

    @classmethod
    def known_thresholds(cls) -> frozenset[str] | None:
        """The threshold names this plugin reads; None (the default): not declared, not
        checked. When declared, an unknown name in the plugin config or the target is a
        ConfigError (a typo must not silently leave a default in force)."""
        return None

    def check_thresholds(self, *sources: Mapping[str, Any]) -> None:
        """Raise ConfigError naming the thresholds in ``sources`` the plugin does not know."""
        known = self.known_thresholds()
        if known is None:
            return
        unknown = sorted({name for src in sources for name in src} - known)
        if unknown:
            raise ConfigError(f"plugin {self.info().id!r}: unknown thresholds "
                              f"{', '.join(unknown)} (known: {', '.join(sorted(known))})")

    @classmethod
    def target_options(cls) -> dict[str, Any] | None:
        """The target options this plugin reads: name -> JSON Schema (type, range,
        ``description``, ``default``). None (the default): not declared, not checked.
        When declared, a target with an unknown or invalid option is refused before
        connect, naming the known ones (a typo must not be silently ignored)."""
        return None

    def check_target(self, target: MiddlewareTarget) -> None:
        """Raise ConfigError naming every problem of the target's options."""
        known = self.target_options()
        if known is None:
            return
        found = problems(known, target.options, noun="target option")
        if found:
            raise ConfigError(f"plugin {self.info().id!r}: " + "; ".join(found))

    def connect_checked(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        """What the manager calls: the target's options and secret references checked
        (a reference the operator did not allow is refused before any connection), then
        :meth:`connect`."""
        self.check_target(target)
        secrets.check_target_references(target)  # a plugin host checks its grants
        self.connect(deadline, target)

    @abc.abstractmethod
    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        """Open (or reuse) a connection to the target. Raise ConnectError / AuthError."""

    def disconnect(self, deadline: Deadline) -> None:
        """Close the connection to the current target."""

    def prepare(self, run: Run) -> None:
        """Fetch, in as few round trips as possible, what the chosen categories need
        (store it in ``run.data``). Errors here are reported under ``_prepare``."""

    def get_metrics(self, deadline: Deadline) -> dict[str, Any]:
        """Current metrics, read cheaply and without judging them. None by default
        (``diagnose`` records every metric a run reads); override where the middleware
        has a cheap read, e.g. one INFO call."""
        return {}

    def action_specs(self) -> Mapping[str, ActionSpec]:
        """Description, parameters (JSON Schema) and dry-run support of each declared
        action, by name. An action missing here runs with its parameters unchecked by the
        framework (the plugin's own code still checks them)."""
        return {}

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        """Run a declared action. The sandbox has already checked it is allowed and its
        parameters match its spec; ``params["dry_run"]`` (for an action whose spec says
        ``dry_run``): say what would be done, do nothing."""
        raise NotImplementedError(f"action {action!r} has no implementation")

    def diagnose(self, deadline: Deadline, options: DiagnoseOptions) -> DiagnosticResult:
        """Run the chosen categories; never raises for a category that fails."""
        info = self.info()
        if self.target is None:
            raise ConfigError(f"plugin {info.id!r}: diagnose called before connect")
        chosen = options.categories or self.categories()
        unknown = [c for c in chosen if c not in self._categories]
        if unknown:
            raise ConfigError(
                f"plugin {info.id!r}: unknown categories {', '.join(unknown)} "
                f"(known: {', '.join(self.categories())})"
            )
        self.check_thresholds(self.config.thresholds, self.target.thresholds)
        run = Run(self, self.target, deadline, options, chosen)
        t0 = time.perf_counter()
        started = utcnow()
        run.guard("_prepare", lambda: self.prepare(run))
        for name in chosen:
            if run.interrupted:
                run.errors.setdefault(name, "not run: the diagnosis was interrupted")
                continue
            if deadline.expired:
                run.errors[name] = "not run: the deadline passed before this category"
                continue
            method = getattr(self, self._categories[name])
            run.guard(name, functools.partial(method, run))
        return run.result(info, started, time.perf_counter() - t0)


class Run:
    """One diagnosis in progress: what a category check reads and writes."""

    __slots__ = ("plugin", "target", "deadline", "options", "categories", "findings",
                 "metrics", "errors", "data", "interrupted", "_thresholds")

    def __init__(self, plugin: MiddlewarePlugin, target: MiddlewareTarget, deadline: Deadline,
                 options: DiagnoseOptions, categories: tuple[str, ...]) -> None:
        self.plugin = plugin
        self.target = target
        self.deadline = deadline
        self.options = options
        self.categories = categories
        self.findings: list[Finding] = []
        self.metrics: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self.data: dict[str, Any] = {}
        self.interrupted = False
        self._thresholds = {**plugin.config.thresholds, **target.thresholds}

    @property
    def history(self) -> tuple[Snapshot, ...]:
        return self.options.history

    def thresholds(self, defaults: Mapping[str, float]) -> dict[str, float]:
        """``defaults`` with the plugin config's and the target's values over them."""
        return {**defaults, **self._thresholds}

    def threshold(self, name: str, default: float) -> float:
        """The target's value, else the plugin config's, else ``default``."""
        return self._thresholds.get(name, default)

    def metric(self, name: str, value: Any) -> None:
        self.metrics[name] = value

    def finding(self, code: str, severity: Severity, title: str, *, evidence: dict[str, Any],
                suggestion: str, category: str | None = None) -> Finding:
        """Add a finding: the numbers it was decided on and what to do are required."""
        f = Finding(code=code, category=category or code.split(".")[1], severity=severity,
                    title=title, evidence=evidence, suggestion=suggestion)
        self.findings.append(f)
        return f

    def guard(self, name: str, fn: Callable[[], Any]) -> None:
        """Run ``fn``; an exception is recorded as this category's error, not raised."""
        try:
            fn()
        except tuple(_INTERRUPTS) as e:
            self.interrupted = True
            self.errors[name] = f"interrupted: {type(e).__name__}"
        except DeadlineExceeded as e:
            self.errors[name] = f"deadline: {e}"
        except Exception as e:  # a category that fails must not fail the diagnosis
            log.debug("%s on %s: category %s failed", self.plugin.info().id, self.target.name,
                      name, exc_info=True)
            self.errors[name] = f"{type(e).__name__}: {e}"

    def result(self, info: PluginInfo, started: Any, duration: float) -> DiagnosticResult:
        return DiagnosticResult(
            plugin_id=info.id, plugin_version=info.version, target_name=self.target.name,
            status=DiagnosticResult.status_of(self.findings, self.errors), started_at=started,
            duration=duration, findings=self.findings, metrics=self.metrics, errors=self.errors,
            categories=self.categories, outcome="timed_out" if self.interrupted else "completed",
        )
