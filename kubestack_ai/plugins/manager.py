"""PluginManager: the facade the CLI, the workers and the tests call.

It owns its collaborators and delegates to them (seed section 2.1)::

    PluginManager
    ├── registry   Registry          every plugin, its config and state (registry.py)
    ├── sandbox    Sandbox           deadlines, exception capture, action whitelist (sandbox.py)
    ├── lifecycle  LifecycleManager  init/start/stop/reload, health checks (lifecycle.py)
    ├── loader     Loader            builtins and external plugins into the registry (loader.py)
    └── reloader   Reloader          hot reload and rollback of a plugin's code (reloader.py)

What it does itself: a diagnosis, a health check or an action on a target, each through
the sandbox, with the plugin's lock held and the log context set (plugin id, target).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .base import MiddlewarePlugin, Plugin
from .deadline import Deadline
from .errors import (
    ActionRefusedError,
    AuthError,
    ConfigError,
    ConnectError,
    PluginCallError,
    PluginError,
    PluginTimeoutError,
)
from .execution import (
    ActionRecord,
    ActionResult,
    AuditSink,
    Clock,
    allowing,
    check_params,
    finish,
    redact,
    refusal_outcome,
    specs_of,
)
from .lifecycle import LifecycleFailure, LifecycleManager
from .loader import Loader
from .logcontext import get_logger, log_context
from .models import (
    DiagnoseOptions,
    DiagnosticResult,
    Finding,
    MiddlewareTarget,
    PluginConfig,
    PluginInfo,
    PluginState,
    RunOutcome,
    Severity,
    Status,
    utcnow,
)
from .registry import Entry, Registry
from .reloader import Reloader, ReloadHook, ReloadReport
from .sandbox import Outcome, Sandbox

log = get_logger(__name__)

AuditHook = Callable[[dict[str, Any]], None]
"""Receives one record per attempted action (an ActionRecord as JSON, plus ``ok``) once
it is over. In-process observers; the audit log itself is an AuditSink."""


class PluginManager:
    """Builtins and external plugins (:meth:`load_builtins`, :meth:`load_external`),
    lifecycle, diagnosis, actions, and hot reload (:meth:`hot_reload`, :meth:`rollback`)."""

    def __init__(self, registry: Registry | None = None, sandbox: Sandbox | None = None) -> None:
        self.registry = registry or Registry()
        self.sandbox = sandbox or Sandbox()
        self.lifecycle = LifecycleManager(self.registry, self.sandbox)
        self.loader = Loader(self.registry, self.sandbox)
        self.reloader = Reloader(self.registry, self.sandbox, self.loader)
        self.audit_hooks: list[AuditHook] = []

    @property
    def reload_hooks(self) -> list[ReloadHook]:
        """Called with a ReloadReport after every successful hot reload or rollback (the
        workers bump the plugin's generation in storage from here). Append to it."""
        return self.reloader.hooks

    # -- loading (Loader) -------------------------------------------------------------

    def register(self, plugin: Plugin, config: PluginConfig | None = None, *,
                 source: str = "builtin") -> Entry:
        """Register an instance; its info() runs in the sandbox (it is plugin code)."""
        return self.loader.register(plugin, config, source=source)

    def load_builtin(self, plugin_id: str, config: PluginConfig | None = None) -> Entry:
        return self.loader.load_builtin(plugin_id, config)

    def load_builtins(self, configs: Mapping[str, PluginConfig] | None = None) -> list[PluginError]:
        return self.loader.load_builtins(configs)

    def load_external(self, dirs: Iterable[str | Path] | None = None, *,
                      entry_points: bool = True,
                      configs: Mapping[str, PluginConfig] | None = None,
                      env: Mapping[str, str] | None = None) -> list[PluginError]:
        """External plugins from ``dirs`` (default: /etc/kubestack-ai/plugins and
        KSA_PLUGIN_PATH) and entry points; returns the errors, registers the rest."""
        return self.loader.load_external(dirs, entry_points=entry_points, configs=configs,
                                         env=env)

    def load_path(self, path: str | Path, config: PluginConfig | None = None) -> Entry:
        """One plugin from a folder or a manifest file."""
        return self.loader.load_path(path, config)

    def load_all(self, dirs: Iterable[str | Path] | None = None,
                 configs: Mapping[str, PluginConfig] | None = None, *,
                 entry_points: bool = True) -> list[PluginError]:
        """Builtins, then external plugins, then entry points."""
        errors = self.load_builtins(configs)
        return errors + self.load_external(dirs, entry_points=entry_points, configs=configs)

    def list_plugins(self) -> list[Entry]:
        if not self.registry.middleware_types():
            self.load_builtins()
        return self.registry.entries()

    # -- lifecycle (LifecycleManager) -------------------------------------------------

    def init(self, plugin_id: str, config: PluginConfig | None = None) -> None:
        self.lifecycle.init(plugin_id, config)

    def start(self, plugin_id: str) -> None:
        self.lifecycle.start(plugin_id)

    def stop(self, plugin_id: str) -> None:
        self.lifecycle.stop(plugin_id)

    def reload(self, plugin_id: str, config: PluginConfig | None = None) -> None:
        """Initialized -> Loaded -> Initialized with a new config (same code)."""
        self.lifecycle.reload(plugin_id, config)

    def start_all(self) -> list[LifecycleFailure]:
        return self.lifecycle.start_all()

    def stop_all(self) -> list[LifecycleFailure]:
        return self.lifecycle.stop_all()

    def ensure_running(self, plugin_id: str) -> Plugin:
        state = self.registry.get_state(plugin_id)
        if state is PluginState.LOADED:
            self.lifecycle.init(plugin_id)
            state = PluginState.INITIALIZED
        if state is PluginState.INITIALIZED:
            self.lifecycle.start(plugin_id)
            state = PluginState.RUNNING
        if state is not PluginState.RUNNING:
            entry = self.registry.entry(plugin_id)
            why = f": {entry.last_error}" if entry.last_error else ""
            raise PluginError(f"plugin {plugin_id!r} is {state.value}, not running{why}")
        return self.registry.get(plugin_id)

    # -- new code (Reloader) ----------------------------------------------------------

    def hot_reload(self, plugin_id: str, source: str | Path | None = None,
                   config: PluginConfig | None = None) -> ReloadReport:
        """Load ``plugin_id``'s code again (from ``source``, a plugin folder or manifest,
        when given) and swap it in once it is Running; the old version serves until then."""
        return self.reloader.hot_reload(plugin_id, source, config)

    def rollback(self, plugin_id: str, config: PluginConfig | None = None) -> ReloadReport:
        """Go back to the version the last reload replaced."""
        return self.reloader.rollback(plugin_id, config)

    def _entry_for(self, mtype: str) -> Entry:
        """The registry entry of the running plugin for ``mtype`` (builtins loaded on
        first use). Its plugin, info and lock belong together: a hot reload swaps in a
        whole new entry."""
        if not self.registry.middleware_types():
            self.load_builtins()
        plugin_id = self.registry.middleware_plugin_id(mtype)
        plugin = self.ensure_running(plugin_id)
        entry = self.registry.entry(plugin_id)
        if entry.plugin is not plugin:  # swapped meanwhile: the new entry is Running
            plugin = self.ensure_running(plugin_id)
            entry = self.registry.entry(plugin_id)
        return entry

    # -- diagnosis --------------------------------------------------------------------

    def diagnose(self, target: MiddlewareTarget, options: DiagnoseOptions | None = None,
                 timeout: float | None = None) -> DiagnosticResult:
        """Connect and diagnose through the sandbox. Never raises for a plugin's or a
        server's failure: an unreachable server, a refused password, a timeout or a
        crash becomes a result with a finding or an error that says what happened."""
        options = options or DiagnoseOptions()
        started = utcnow()
        with log_context(target=target.key):
            try:
                entry = self._entry_for(target.type)
            except PluginError as e:
                return _failed(target, "", "", started, 0.0, "_run", str(e), options)
            with log_context(plugin_id=entry.info.id):
                return self._diagnose(entry, target, options, timeout, started)

    def _diagnose(self, entry: Entry, target: MiddlewareTarget, options: DiagnoseOptions,
                  timeout: float | None, started: Any) -> DiagnosticResult:
        plugin_id, plugin, info, lock = entry.info.id, entry.plugin, entry.info, entry.lock
        assert isinstance(plugin, MiddlewarePlugin)
        cfg = plugin.config
        budget = timeout if timeout is not None else cfg.timeouts.diagnose
        deadline = Deadline(budget)
        log.debug("diagnose %s with %s: categories=%s budget=%.1fs", target.name, plugin_id,
                  ",".join(options.categories) or "all", budget)
        if not lock.acquire(timeout=deadline.remaining()):
            return _failed(target, plugin_id, info.version, started, budget, "_run",
                           f"plugin {plugin_id!r} is still busy with an earlier call",
                           options, outcome="timed_out")
        if entry.state is not PluginState.RUNNING and self.registry.entry(plugin_id) is not entry:
            # retired by a hot reload between the lookup and the lock: use the new version
            lock.release()
            return self.diagnose(target, options, timeout)
        # the sandbox releases the lock once no call of the plugin runs any more (a call
        # it gave up on may go on in its thread, on the plugin's connection)
        return self._diagnose_locked(plugin_id, info, plugin, target, options, deadline,
                                     started, cfg.timeouts.connect, budget, lock.release)

    def _diagnose_locked(self, plugin_id: str, info: PluginInfo, plugin: MiddlewarePlugin,
                         target: MiddlewareTarget, options: DiagnoseOptions, deadline: Deadline,
                         started: Any, connect_timeout: float, budget: float,
                         release: Callable[[], None]) -> DiagnosticResult:
        outs = self.sandbox.run_steps(plugin_id, [
            ("connect", lambda d: plugin.connect_checked(d, target), connect_timeout),
            ("diagnose", lambda d: plugin.diagnose(d, options), budget),
        ], deadline, release)
        conn = outs[0]
        if conn.error is not None:
            log.debug("connect %s with %s failed: %s", target.name, plugin_id, conn.error)
            return _unreachable(target, info, started, conn, options)
        log.debug("connected to %s with %s in %.1f ms", target.name, plugin_id, conn.wall * 1e3)
        out = outs[1]
        if out.error is None and isinstance(out.value, DiagnosticResult):
            return out.value
        outcome: RunOutcome = "timed_out" if out.timed_out else "failed"
        err = out.error if out.error is not None else PluginCallError(
            plugin_id, "diagnose", f"returned {type(out.value).__name__}, not DiagnosticResult")
        return _failed(target, plugin_id, info.version, started, conn.wall + out.wall, "_run",
                       str(err), options, outcome=outcome)

    def health_check(self, target: MiddlewareTarget, timeout: float | None = None) -> DiagnosticResult:
        """A cheap reachability check: connect only."""
        started = utcnow()
        with log_context(target=target.key):
            try:
                entry = self._entry_for(target.type)
            except PluginError as e:
                return _failed(target, "", "", started, 0.0, "_run", str(e), DiagnoseOptions())
            with log_context(plugin_id=entry.info.id):
                return self._health_check(entry, target, timeout, started)

    def _health_check(self, entry: Entry, target: MiddlewareTarget, timeout: float | None,
                      started: Any) -> DiagnosticResult:
        plugin_id, plugin, info = entry.info.id, entry.plugin, entry.info
        assert isinstance(plugin, MiddlewarePlugin)
        cfg = plugin.config
        budget = timeout if timeout is not None else cfg.timeouts.health_check
        if not entry.lock.acquire(timeout=budget):
            return _failed(target, plugin_id, info.version, started, budget, "_run",
                           f"plugin {plugin_id!r} is still busy with an earlier call",
                           DiagnoseOptions(), outcome="timed_out")
        conn = self.sandbox.run(plugin_id, "connect",
                                lambda d: plugin.connect_checked(d, target), budget,
                                release=entry.lock.release)
        if conn.error is not None:
            log.debug("health check of %s failed: %s", target.name, conn.error)
            return _unreachable(target, info, started, conn, DiagnoseOptions())
        return DiagnosticResult(plugin_id=plugin_id, plugin_version=info.version,
                                target_name=target.name, status=Status.HEALTHY,
                                started_at=started, duration=conn.wall,
                                metrics={"connect_seconds": round(conn.wall, 6)},
                                categories=("health",))

    # -- actions ----------------------------------------------------------------------

    def execute(self, target: MiddlewareTarget, action: str,
                params: Mapping[str, Any] | None = None, *, allow: Iterable[str] = (),
                dry_run: bool = False, who: str = "", audit: AuditSink | None = None,
                ) -> ActionResult:
        """Run a whitelisted action on a target: the one path of ``ksa action`` and the
        ``action.<type>`` task (see plugins/execution.py). Every attempt reaches the
        audit sink and the audit hooks; a sink that cannot write refuses the action."""
        params = dict(params or {})
        if dry_run:
            params["dry_run"] = True
        clock = Clock()
        with log_context(target=target.key):
            try:
                entry = self._entry_for(target.type)
            except PluginError as e:  # no plugin to run it (it failed to initialise...)
                return self._unready(target, action, params, e, clock, who=who,
                                     dry_run=dry_run, audit=audit)
            with log_context(plugin_id=entry.info.id):
                return self._execute(entry, allowing(target, allow), action, params, clock,
                                     who=who, dry_run=dry_run, audit=audit,
                                     allowed_by=tuple(a for a in allow if a == action))

    def _execute(self, entry: Entry, target: MiddlewareTarget, action: str,
                 params: dict[str, Any], clock: Clock, *, who: str, dry_run: bool,
                 audit: AuditSink | None, allowed_by: tuple[str, ...]) -> ActionResult:
        plugin_id, plugin, info = entry.info.id, entry.plugin, entry.info
        assert isinstance(plugin, MiddlewarePlugin)
        base = ActionRecord(at=clock.at, who=who, plugin_id=plugin_id,
                            plugin_version=info.version, target=target.key,
                            endpoints=target.endpoints, action=action, params=redact(params),
                            dry_run=dry_run, outcome="started", allowed_by=allowed_by)
        try:
            self.sandbox.check_action(info, plugin.config, action, target)
            spec = specs_of(plugin, info)[action]
            if dry_run and not spec.dry_run:
                raise ActionRefusedError(plugin_id, action, "it has no dry run")
            check_params(plugin_id, spec, params)
        except PluginError as e:
            log.info("action %s refused: %s", action, e)
            return self._audited(ActionResult(plugin_id, f"execute {action}", error=e),
                                 base, clock, audit, begin=True)
        handle = None
        if audit is not None:
            try:
                handle = audit.begin(base)
            except Exception as e:  # fail closed: no audit record, no action
                err = ActionRefusedError(plugin_id, action, f"the audit log cannot be written "
                                         f"({type(e).__name__}: {e}); not run")
                log.error("%s", err)
                return self._audited(ActionResult(plugin_id, f"execute {action}", error=err),
                                     base, clock, None, begin=False)
        log.info("action %s%s by %s", action, " (dry run)" if dry_run else "", who or "?")
        # released by the sandbox once no call runs any more (one it gave up on may go on)
        entry.lock.acquire()
        outs = self.sandbox.run_steps(plugin_id, [
            ("connect", lambda d: plugin.connect_checked(d, target),
             plugin.config.timeouts.connect),
            (f"execute {action}", lambda d: plugin.execute(d, action, params),
             plugin.config.timeouts.execute),
        ], release=entry.lock.release)
        out = ActionResult(plugin_id, f"execute {action}", value=outs[-1].value,
                           error=outs[-1].error, wall=sum(o.wall for o in outs))
        return self._audited(out, base, clock, audit, handle=handle)

    def _unready(self, target: MiddlewareTarget, action: str, params: dict[str, Any],
                 error: PluginError, clock: Clock, *, who: str, dry_run: bool,
                 audit: AuditSink | None) -> ActionResult:
        """The plugin could not be made ready (load, init, start failed): the attempt is
        audited all the same, as a failure naming why (every attempt is)."""
        plugin_id, version = "", ""
        try:
            plugin_id = self.registry.middleware_plugin_id(target.type)
            version = self.registry.entry(plugin_id).info.version
        except PluginError:
            pass  # no plugin for this type at all: the record says so through the error
        log.error("action %s not run: %s", action, error)
        base = ActionRecord(at=clock.at, who=who, plugin_id=plugin_id, plugin_version=version,
                            target=target.key, endpoints=target.endpoints, action=action,
                            params=redact(params), dry_run=dry_run, outcome="started")
        with log_context(plugin_id=plugin_id):
            return self._audited(ActionResult(plugin_id, f"execute {action}", error=error),
                                 base, clock, audit, begin=True)

    def _audited(self, out: ActionResult, base: ActionRecord, clock: Clock,
                 audit: AuditSink | None, *, begin: bool = False,
                 handle: Any = None) -> ActionResult:
        outcome = "succeeded" if out.error is None else refusal_outcome(out.error)
        out.record = base.model_copy(update={
            "outcome": outcome, "error": None if out.error is None else str(out.error),
            "result": redact(out.value), "duration": clock.seconds()})
        if begin and audit is not None:
            # refused before it ran: the final record is the only one
            try:
                handle = audit.begin(out.record)
            except Exception as e:  # refused anyway: say the refusal went unrecorded
                out.audit_error = f"{type(e).__name__}: {e}"
                log.error("audit: refusal of action %s not written: %s", base.action,
                          out.audit_error)
            audit = None
        out.audit_handle = handle
        out.audit_error = finish(audit, handle, out.record) or out.audit_error
        legacy = {**out.record.model_dump(mode="json"), "ok": out.record.ok}
        for hook in self.audit_hooks:
            try:
                hook(legacy)
            except Exception:  # an audit hook that fails must be visible, not fatal
                log.exception("audit hook failed for action %s", base.action)
        return out


def _failed(target: MiddlewareTarget, plugin_id: str, version: str, started: Any, duration: float,
            where: str, message: str, options: DiagnoseOptions,
            outcome: RunOutcome = "failed") -> DiagnosticResult:
    return DiagnosticResult(plugin_id=plugin_id, plugin_version=version, target_name=target.name,
                            status=Status.UNKNOWN, started_at=started, duration=duration,
                            errors={where: message}, categories=options.categories,
                            outcome=outcome)


def _unreachable(target: MiddlewareTarget, info: PluginInfo, started: Any,
                 conn: Outcome[Any], options: DiagnoseOptions) -> DiagnosticResult:
    """A server that cannot be reached or refuses us is a critical finding, not a crash.
    A misconfigured target (ConfigError from connect) is no outage: an unknown result."""
    err = conn.error
    if isinstance(err, ConfigError):
        return _failed(target, info.id, info.version, started, conn.wall, "_config", str(err),
                       options)
    mtype = target.type
    if isinstance(err, AuthError):
        code, title = f"{mtype}.connection.auth_failed", "Authentication refused"
        suggestion = ("Check the user and the secret the target's auth references; "
                      "the server refused them.")
    elif isinstance(err, PluginTimeoutError):
        code, title = f"{mtype}.connection.timeout", "Connection timed out"
        suggestion = "Check that the host is up and that no firewall drops the traffic."
    elif isinstance(err, (ConnectError, PluginCallError)):
        known = err if isinstance(err, ConnectError) else None
        code = f"{mtype}.connection.{(known and known.kind) or 'unreachable'}"
        title = (known and known.title) or "Cannot connect"
        suggestion = ((known and known.hint)
                      or "Check that the server runs and listens on this address.")
    else:
        code, title = f"{mtype}.connection.failed", "Cannot connect"
        suggestion = "Check the target's configuration."
    finding = Finding(code=code, category="connection", severity=Severity.CRITICAL,
                      title=f"{title}: {target.name}",
                      evidence={"endpoints": list(target.endpoints), "error": str(err)},
                      suggestion=suggestion)
    return DiagnosticResult(plugin_id=info.id, plugin_version=info.version,
                            target_name=target.name, status=Status.CRITICAL, started_at=started,
                            duration=conn.wall, findings=[finding],
                            errors={"_connect": str(err)}, categories=options.categories)
