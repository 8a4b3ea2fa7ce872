"""What a worker child keeps between tasks, and the body of every task.

One :class:`Runtime` per process (created lazily, replaced after fork): one
PluginManager whose plugins (and their connections) are reused task after task, the
storage handle, and the plugin generations this child has loaded. Plugins run in the
task's own thread (``Sandbox(threaded=False)``): Celery's time limits are signals to
that thread, which a sandbox thread would not receive.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from pydantic import ValidationError

from kubestack_ai.plugins import (
    DiagnoseOptions,
    DiagnosticResult,
    MiddlewareTarget,
    PluginConfig,
    PluginError,
    PluginManager,
    PluginState,
    Sandbox,
    Status,
    get_logger,
    log_context,
    plugin_dirs,
    register_interrupt,
)
from kubestack_ai.plugins.execution import ActionRecord, redact
from kubestack_ai.plugins.index import canary
from kubestack_ai.plugins.isolation import HostPool, PluginRef, isolated, locate
from kubestack_ai.plugins.models import Severity, utcnow
from kubestack_ai.storage import AuditLog

from .args import (
    TaskArgsError,
    check_cache_ttl,
    check_categories,
    check_force,
    check_known_categories,
    check_target,
)
from .catalog import PluginSpec, is_builtin, merge_config
from .laststate import LastStates
from .store import SafeStore

log = get_logger(__name__)

# Celery's soft limit is an Exception: without this a category's own error capture
# would swallow it and the diagnosis would run on towards the hard limit.
register_interrupt(SoftTimeLimitExceeded)

_UNLIMITED = resource.RLIM_INFINITY

DEADLINE_ERRORS = ("not run: the deadline passed", "deadline:")
"""How the framework's Run records a category its deadline stopped (plugins/base.py)."""


def target_error(e: ValidationError) -> str:
    """A target validation error without the input values (they may hold a password)."""
    parts = []
    for err in e.errors(include_input=False, include_url=False):
        where = ".".join(str(x) for x in err["loc"]) or "target"
        parts.append(f"{where}: {err['msg']}")
    return "invalid target: " + "; ".join(parts)


def envelope(task_id: str, result: DiagnosticResult | None, *, target_key: str = "",
             plugin_id: str = "", cached: bool = False, stored: bool | None = None,
             storage_error: str | None = None, error: str | None = None) -> dict[str, Any]:
    """What a task returns (and Flower shows): never a secret, the target by key only.
    ``summary`` comes first so that Flower's one-line repr of the result starts with it."""
    return {
        "summary": summary(result, error),
        "task_id": task_id, "target": target_key, "plugin_id": plugin_id,
        "status": str(result.status) if result is not None else "unknown",
        "outcome": result.outcome if result is not None else "failed",
        "cached": cached, "stored": stored, "storage_error": storage_error, "error": error,
        "pid": os.getpid(),
        "result": result.model_dump(mode="json") if result is not None else None,
    }


def summary(result: DiagnosticResult | None, error: str | None = None) -> str:
    """One line: ``critical: mysql.connection.auth_failed; 2 more`` (the worst finding,
    then how many other warning or critical ones), the outcome first when not completed."""
    if result is None:
        return f"error: {error}" if error else "unknown"
    prefix = "" if result.outcome in ("completed", "cached") else f"{result.outcome}, "
    serious = sorted((f for f in result.findings if f.severity >= Severity.WARNING),
                     key=lambda f: -int(f.severity))
    if serious:
        more = f"; {len(serious) - 1} more" if len(serious) > 1 else ""
        return f"{prefix}{result.status}: {serious[0].code}{more}"
    if result.errors:
        where = ", ".join(sorted(result.errors))
        return f"{prefix}{result.status}: could not read {where}"
    n = len(result.findings)
    return f"{prefix}{result.status}: " + (f"{n} info findings" if n else "no findings")


def action_envelope(task_id: str, rec: ActionRecord, audit_id: Any,
                    audit_error: str | None) -> dict[str, Any]:
    """What an action task returns: its audit record (redacted) and where it is kept."""
    return {"task_id": task_id, **rec.model_dump(mode="json"), "ok": rec.ok,
            "audit_id": audit_id, "audit_error": audit_error, "pid": os.getpid()}


class Runtime:
    def __init__(self, specs: Mapping[str, PluginSpec], store: SafeStore,
                 cache_ttl: float, last_states: Path | None = None,
                 home: Path | None = None) -> None:
        self.specs = specs
        self.home = home
        """$KSA_HOME: where a plugin's canary state lives (None: no canaries)."""
        self.canaries: dict[str, tuple[int | None, dict[str, Any] | None]] = {}
        """Plugin id -> (the generation it was read at, its canary state)."""
        self.canary_managers: dict[str, tuple[str, PluginManager]] = {}
        self.canary_checked: dict[str, float] = {}
        self.store = store
        self.cache_ttl = cache_ttl
        self.manager = PluginManager(sandbox=Sandbox(threaded=False))
        self.generations: dict[str, int] = {}
        self.configs: dict[str, PluginConfig] = {}
        self.sources: dict[str, str | None] = {}
        """The code location storage names for each plugin (``reload --from``; a rollback
        goes back one); None: the plugin directories / the builtin's package."""
        self.last = LastStates(last_states)
        """The last enabled/disabled state read from storage, per plugin: what holds while
        storage cannot be read (fail closed: none read, the plugin is refused)."""
        self.hosts = HostPool()
        """Plugin hosts of the isolated plugins (plugins/isolation), kept warm."""
        self.isolated: dict[str, tuple[PluginRef, int | None]] = {}
        """Isolated plugins: where their code is, at which generation (never imported here)."""

    # -- plugins ----------------------------------------------------------------------

    def _ensure_loaded(self, spec: PluginSpec, config: PluginConfig, generation: int | None) -> None:
        """Load the plugin once; reload it when storage's generation moved on (a builtin
        gets a new instance, an external plugin's code is imported again)."""
        pid = spec.plugin_id
        loaded = pid in self.manager.registry
        if loaded and (generation is None or self.generations.get(pid) == generation):
            return
        source = self.sources.get(pid)
        if loaded:
            log.info("plugin %s: generation %s -> %s, reloading%s", pid,
                     self.generations.get(pid), generation, f" from {source}" if source else "")
            try:
                if source is None and (not is_builtin(pid) or self.manager.registry.entry(
                        pid).source != "builtin"):
                    # from the plugin directories, or the builtin's package, wherever the
                    # loaded code came from: a rollback past every --from location comes
                    # back here, to what a fresh child loads (never mixed versions)
                    raise PluginError("no stored location")
                self.manager.hot_reload(pid, source, config=config)
            except PluginError as e:
                if source is not None:
                    log.warning("plugin %s: hot reload failed (%s); loading it afresh", pid, e)
                self._unload(pid)
                self._load(pid, config, source)
        else:
            self._load(pid, config, source)
        self.configs[pid] = config
        if generation is not None:
            self.generations[pid] = generation

    def _ensure_located(self, spec: PluginSpec, config: PluginConfig,
                        generation: int | None) -> None:
        pid = spec.plugin_id
        known = self.isolated.get(pid)
        source = self.sources.get(pid)
        if known is not None and (generation is None or known[1] == generation) \
                and (known[0].path == source or source is None):
            return
        if known is not None:
            log.info("plugin %s: generation %s -> %s, replacing its plugin hosts", pid,
                     known[1], generation)
            self.hosts.retire(pid)
        self.isolated[pid] = (locate(pid, is_builtin(pid), source), generation)
        self.configs[pid] = config

    def _load(self, pid: str, config: PluginConfig, source: str | None = None) -> None:
        if is_builtin(pid):
            self.manager.load_builtin(pid, config)
            return
        if source is not None:
            entry = self.manager.load_path(source, config)
            if entry.info.id != pid:
                self.manager.registry.unregister(entry.info.id)
                raise PluginError(f"plugin {pid!r}: {source} holds {entry.info.id!r}")
            return
        for err in self.manager.load_external(plugin_dirs(), configs={pid: config}):
            log.error("external plugin: %s", err)
        if pid not in self.manager.registry:
            raise PluginError(f"plugin {pid!r} could not be loaded in this worker")

    def _unload(self, pid: str) -> None:
        try:
            if self.manager.registry.get_state(pid) is PluginState.RUNNING:
                self.manager.stop(pid)
        except PluginError as e:
            log.warning("plugin %s: stop before reload failed: %s", pid, e)
        self.manager.registry.unregister(pid)

    def _ready(self, spec: PluginSpec, config: PluginConfig, generation: int | None) -> str | None:
        """Load (or reload) the plugin; a plugin that cannot be loaded is an answer. An
        isolated plugin is only located here: its code is imported by its host."""
        try:
            if isolated(spec.plugin_id, config, is_builtin(spec.plugin_id)):
                self._ensure_located(spec, config, generation)
                return None
            if self.isolated.pop(spec.plugin_id, None) is not None:
                self.hosts.retire(spec.plugin_id)  # configured back into the worker
            self._ensure_loaded(spec, config, generation)
        except PluginError as e:
            log.error("plugin %s cannot be loaded: %s", spec.plugin_id, e)
            return f"plugin {spec.plugin_id!r} cannot be loaded: {e}"
        return None

    def _plugin_state(self, spec: PluginSpec) -> tuple[PluginConfig, int | None, str | None, str | None]:
        """(config, generation, refusal, storage error) from storage, at task start."""
        rec, err = self.store.call("get_plugin_state",
                                   lambda s: s.get_plugin_state(spec.plugin_id))
        pid = spec.plugin_id
        if err is not None:
            # storage down: keep what this child has, and the last state read; never
            # read, the plugin may be disabled: refused (fail closed)
            known = self.last.get(pid)
            if known is None:
                why = (f"plugin {pid!r}: its state (enabled or disabled) cannot be read from "
                       "storage and was never read here before; it runs once storage "
                       f"answers ({err})")
            elif not known:
                why = (f"plugin {pid!r} is disabled (the last state read here: storage "
                       "cannot be read now)")
            else:
                why = None
            return self.configs.get(pid, spec.config), None, why, err
        self.sources[pid] = rec.source if rec is not None else None
        self.last.put(pid, rec is None or rec.enabled)
        if rec is None:
            return spec.config, 0, None, None
        if not rec.enabled:
            return spec.config, rec.generation, f"plugin {spec.plugin_id!r} is disabled", None
        try:
            config = merge_config(spec.config, rec.config)
        except ValidationError as e:
            why = f"plugin {spec.plugin_id!r}: stored config invalid: {e.error_count()} errors"
            return spec.config, rec.generation, why, None
        return config, rec.generation, None, None

    # -- tasks ------------------------------------------------------------------------

    def diagnose(self, task_id: str, mtype: str, target: Mapping[str, Any],
                 categories: Sequence[str] | None, force: bool,
                 cache_ttl: float | None) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            cats = check_categories(categories)
            force = check_force(force)
            cache_ttl = check_cache_ttl(cache_ttl)
            spec = self.specs.get(mtype)
            if spec is not None:
                check_known_categories(cats, spec.categories, f"plugin {spec.plugin_id!r}")
        except TaskArgsError as e:
            return envelope(task_id, None, error=f"invalid arguments: {e}")
        try:
            admitted = self._admit(task_id, mtype, target)
        except _Stopped as stop:
            t, spec = stop.target, stop.spec
            result = _stopped(t, spec, t0, cats, "timed_out",
                              "stopped at the soft time limit (before the diagnosis)")
            with log_context(plugin_id=spec.plugin_id, target=t.key):
                return self._store_run(task_id, t, spec, cats, result, cache_ttl, None)
        if isinstance(admitted, dict):
            return admitted
        t, spec, config, storage_error = admitted
        with log_context(plugin_id=spec.plugin_id, target=t.key):
            return self._diagnose(task_id, t, spec, config, cats, force, cache_ttl,
                                  storage_error, t0)

    def _diagnose(self, task_id: str, t: MiddlewareTarget, spec: PluginSpec,
                  config: PluginConfig, cats: tuple[str, ...], force: bool,
                  cache_ttl: float | None, storage_error: str | None,
                  t0: float) -> dict[str, Any]:
        """An admitted diagnosis: the cached result, else a run with the stored history."""
        try:
            if not force and storage_error is None:
                cached, storage_error = self.store.call(
                    "cached_result", lambda s: s.cached_result(t.key, spec.plugin_id, cats))
                if cached is not None:
                    return envelope(task_id, cached, target_key=t.key,
                                    plugin_id=spec.plugin_id, cached=True)
            history: tuple[Any, ...] = ()
            if storage_error is None:
                snaps, storage_error = self.store.call(
                    "snapshots", lambda s: s.snapshots(t.key, spec.plugin_id))
                history = tuple(snaps or ())
        except SoftTimeLimitExceeded:
            # the time ran out in a storage call, before the diagnosis: still a soft limit
            result = _stopped(t, spec, t0, cats, "timed_out",
                              "stopped at the soft time limit (waiting for storage)")
        else:
            opts = DiagnoseOptions(categories=cats, history=history)
            result = self._run_canary(spec, config, t, opts)
        out = self._store_run(task_id, t, spec, cats, result, cache_ttl, storage_error)
        self._check_canary(spec.plugin_id)
        return out

    def _store_run(self, task_id: str, t: MiddlewareTarget, spec: PluginSpec,
                   cats: tuple[str, ...], result: DiagnosticResult, cache_ttl: float | None,
                   storage_error: str | None) -> dict[str, Any]:
        ttl = self.cache_ttl if cache_ttl is None else cache_ttl
        stored, write_error = self.store.record_run(task_id, t.key, spec.plugin_id, cats, result,
                                                    ttl)
        log.info("task %s: %s %s (stored=%s)", task_id, result.outcome, str(result.status),
                 stored)
        return envelope(task_id, result, target_key=t.key, plugin_id=spec.plugin_id,
                        stored=stored, storage_error=write_error or storage_error)

    def health(self, task_id: str, mtype: str, target: Mapping[str, Any]) -> dict[str, Any]:
        try:
            admitted = self._admit(task_id, mtype, target)
        except _Stopped as stop:
            result = _stopped(stop.target, stop.spec, time.perf_counter(), ("health",),
                              "timed_out", "stopped at the soft time limit")
            return envelope(task_id, result, target_key=stop.target.key,
                            plugin_id=stop.spec.plugin_id)
        if isinstance(admitted, dict):
            return admitted
        t, spec, config, storage_error = admitted
        try:
            with log_context(plugin_id=spec.plugin_id, target=t.key):
                where = self.isolated.get(spec.plugin_id)
                result = (self.hosts.run("health", where[0], config, where[1], t)
                          if where is not None else
                          self.manager.health_check(t, timeout=config.timeouts.health_check))
        except SoftTimeLimitExceeded:
            result = _stopped(t, spec, time.perf_counter(), ("health",),
                              "timed_out", "stopped at the soft time limit")
        return envelope(task_id, result, target_key=t.key, plugin_id=spec.plugin_id,
                        storage_error=storage_error)

    def action(self, task_id: str, who: str, mtype: str, target: Mapping[str, Any],
               action: str, params: Mapping[str, Any], allow: Sequence[str],
               dry_run: bool) -> dict[str, Any]:
        """The ``action.<type>`` task: admitted as a diagnosis is, then the manager's one
        action path with the audit log in storage (no audit record, no action)."""
        admitted = self._admit(task_id, mtype, target)
        if isinstance(admitted, dict):
            rec = ActionRecord(at=utcnow(), who=who, plugin_id=admitted["plugin_id"],
                               target=admitted["target"], action=action,
                               params=redact(dict(params)), dry_run=dry_run,
                               outcome="refused", error=admitted["error"])
            audit_id, audit_error = self.store.call(
                "record_action",
                lambda s: s.record_action(rec.model_dump(mode="json"), task_id=task_id))
            return action_envelope(task_id, rec, audit_id, audit_error)
        t, spec, config, _ = admitted
        # runs kept on disk, and ends of actions whose child died, written first (as a
        # diagnosis does): a worker that only runs actions closes those rows too
        self.store.flush()
        where = self.isolated.get(spec.plugin_id)
        if where is not None:
            with log_context(plugin_id=spec.plugin_id, target=t.key):
                rec, handle, audit_error = self.hosts.execute(
                    where[0], config, where[1], t, action, params, allow=tuple(allow),
                    dry_run=dry_run, who=who, audit=AuditLog(self.store.store(), task_id))
                log.info("task %s: action %s %s (in its plugin host)", task_id, action,
                         rec.outcome)
            return action_envelope(task_id, rec, handle, audit_error)
        with log_context(plugin_id=spec.plugin_id, target=t.key), \
                memory_cap(config.memory_limit_mb):
            out = self.manager.execute(t, action, params, allow=allow, dry_run=dry_run,
                                       who=who, audit=AuditLog(self.store.store(), task_id))
            assert out.record is not None
            log.info("task %s: action %s %s", task_id, action, out.record.outcome)
        return action_envelope(task_id, out.record, out.audit_handle, out.audit_error)

    def _admit(self, task_id: str, mtype: str, target: Mapping[str, Any],
               ) -> dict[str, Any] | tuple[MiddlewareTarget, PluginSpec, PluginConfig, str | None]:
        """What every task checks first: a valid target, a plugin for its type, the plugin
        enabled in storage and loaded at the current generation. Returns the refusal's
        envelope, or (target, spec, config, storage_error); raises _Stopped when the soft
        time limit fires meanwhile (in a storage call, a plugin's load)."""
        t, err = self._target(mtype, target)
        if t is None:
            return envelope(task_id, None, error=err)
        spec = self.specs.get(mtype)
        if spec is None:
            return envelope(task_id, None, target_key=t.key,
                            error=f"no plugin for middleware type {mtype!r} on this worker")
        try:
            with log_context(plugin_id=spec.plugin_id, target=t.key):
                config, generation, refusal, storage_error = self._plugin_state(spec)
                if refusal is None:
                    why = self._ready(spec, config, generation)
        except SoftTimeLimitExceeded:
            raise _Stopped(t, spec) from None
        if refusal is not None:
            with log_context(plugin_id=spec.plugin_id, target=t.key):
                log.warning("task %s refused: %s", task_id, refusal)
            return envelope(task_id, None, target_key=t.key, plugin_id=spec.plugin_id,
                            storage_error=storage_error, error=f"refused: {refusal}")
        if why is not None:
            return envelope(task_id, None, target_key=t.key, plugin_id=spec.plugin_id,
                            storage_error=storage_error, error=why)
        return t, spec, config, storage_error

    @staticmethod
    def _target(mtype: str, target: Any) -> tuple[MiddlewareTarget | None, str]:
        try:
            t = MiddlewareTarget.model_validate({"type": mtype, **check_target(target)})
        except TaskArgsError as e:
            return None, f"invalid target: {e}"
        except ValidationError as e:
            return None, target_error(e)
        if t.type != mtype:
            return None, f"target type {t.type!r} sent to the {mtype!r} task"
        return t, ""

    # -- canary (plugins/index/canary.py) -------------------------------------------------

    def _canary_state(self, pid: str) -> dict[str, Any] | None:
        """The plugin's running canary, read again when its stored generation moved."""
        if self.home is None:
            return None
        where = self.isolated.get(pid)  # an isolated plugin's generation is kept there
        gen = where[1] if where is not None else self.generations.get(pid)
        seen = self.canaries.get(pid)
        if seen is None or seen[0] != gen:
            try:
                state = canary.read(self.home, pid)
            except PluginError as e:
                log.warning("plugin %s: canary state not read: %s", pid, e)
                state = None
            state = state if canary.active(state) else None
            self.canaries[pid] = (gen, state)
            old = self.canary_managers.get(pid)
            if old is not None and (state is None or old[0] != state["version"]):
                del self.canary_managers[pid]
                old[1].stop_all()
        return self.canaries[pid][1]

    def _run_canary(self, spec: PluginSpec, config: PluginConfig, t: MiddlewareTarget,
                    options: DiagnoseOptions) -> DiagnosticResult:
        """The run on the canary version when the target is in its share, else as ever."""
        pid = spec.plugin_id
        state = self._canary_state(pid)
        if state is None or not canary.chosen(pid, t.key, float(state["share"])):
            return self._run(spec, config, t, options)
        version = str(state["version"])
        where = self.isolated.get(pid)
        if where is not None:  # an isolated plugin's canary runs in a host of its own too
            try:
                ref = locate(pid, False, source=str(state["location"]))
            except PluginError as e:
                failed = _stopped(t, spec, time.perf_counter(), options.categories, "failed",
                                  f"canary {version} cannot be located: {e}")
                return failed.model_copy(update={"plugin_version": version})
            return self._run(spec, config, t, options, ref=ref)
        have = self.canary_managers.get(pid)
        if have is None:
            m = PluginManager(sandbox=Sandbox(threaded=False))
            try:
                m.load_path(state["location"], config)
            except PluginError as e:
                log.error("plugin %s: canary %s cannot be loaded: %s", pid, version, e)
                failed = _stopped(t, spec, time.perf_counter(), options.categories, "failed",
                                  f"canary {version} cannot be loaded: {e}")
                return failed.model_copy(update={"plugin_version": version})
            have = self.canary_managers[pid] = (version, m)
        return self._run(spec, config, t, options, manager=have[1])

    def _check_canary(self, pid: str) -> None:
        """End a canary whose failure rate exceeds the current version's by its margin
        (at most once per ``check_seconds`` in each child)."""
        state = self.canaries.get(pid, (None, None))[1]
        if state is None or self.home is None:
            return
        now = time.monotonic()
        if now - self.canary_checked.get(pid, -1e9) < float(state.get("check_seconds", 30)):
            return
        self.canary_checked[pid] = now
        since = dt.datetime.fromisoformat(state["started_at"].replace("Z", "+00:00"))
        runs, err = self.store.call("plugin_runs", lambda s: s.plugin_runs(pid, since))
        if err is not None or runs is None:
            return
        reason = canary.abort_reason(state, canary.compare(state, canary.from_records(runs)))
        if reason is None:
            return
        try:
            canary.end(self.home, pid, "auto-aborted", reason)
        except PluginError:
            return  # another child ended it first
        log.warning("plugin %s: canary %s ended itself: %s", pid, state["version"], reason)
        self.store.call("request_reload", lambda s: s.request_reload(pid))

    def _run(self, spec: PluginSpec, config: PluginConfig, target: MiddlewareTarget,
             options: DiagnoseOptions, manager: PluginManager | None = None,
             ref: PluginRef | None = None) -> DiagnosticResult:
        """``manager``: an in-process canary's; ``ref``: an isolated canary's code."""
        t0 = time.perf_counter()
        where = self.isolated.get(spec.plugin_id)
        try:
            if where is not None and manager is None:
                # a crash, an overrun or a memory cap there costs this run, not this child
                result = self.hosts.run("diagnose", ref or where[0], config, where[1], target,
                                        options)
            else:
                with memory_cap(config.memory_limit_mb):
                    result = (manager or self.manager).diagnose(
                        target, options, timeout=config.timeouts.diagnose)
        except SoftTimeLimitExceeded:
            # the soft limit fired outside a category (connect, prepare's caller...)
            return _stopped(target, spec, t0, options.categories, "timed_out",
                            "stopped at the soft time limit")
        except MemoryError:
            return _stopped(target, spec, t0, options.categories, "failed",
                            f"MemoryError: above the {config.memory_limit_mb} MB memory cap")
        if result.outcome != "timed_out" and any(
                "SoftTimeLimitExceeded" in e or e.startswith(DEADLINE_ERRORS)
                for e in result.errors.values()):
            # the plugin's connect (run through the sandbox) was the one interrupted, or
            # its deadline stopped a category: what was read is partial, never "completed"
            result = result.model_copy(update={"outcome": "timed_out"})
        return result


class _Stopped(Exception):  # noqa: N818 (control flow inside the runtime, never raised out)
    """The soft time limit fired while a task was being admitted."""

    def __init__(self, target: MiddlewareTarget, spec: PluginSpec) -> None:
        super().__init__(target.key)
        self.target, self.spec = target, spec


def _stopped(target: MiddlewareTarget, spec: PluginSpec, t0: float, cats: tuple[str, ...],
             outcome: str, why: str) -> DiagnosticResult:
    return DiagnosticResult(plugin_id=spec.plugin_id, target_name=target.name,
                            status=Status.UNKNOWN, started_at=utcnow(),
                            duration=time.perf_counter() - t0, errors={"_run": why},
                            categories=cats, outcome=outcome)


class memory_cap:
    """RLIMIT_AS (soft) for the duration of a plugin call: an allocation past it raises
    MemoryError in the plugin instead of the OOM killer taking the whole machine's
    workers. The hard limit stays where it was, so the cap can be lifted afterwards."""

    def __init__(self, limit_mb: int | None) -> None:
        self.limit = limit_mb * 1024 * 1024 if limit_mb else None
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> memory_cap:
        if self.limit is not None:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            self.saved = (soft, hard)
            new = self.limit if hard == _UNLIMITED else min(self.limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (new, hard))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            resource.setrlimit(resource.RLIMIT_AS, self.saved)
