"""Hot reload and rollback without restarting the process (seed section 9.4).

    load new code (fresh modules) -> init -> start -> swap in the registry -> stop the old
                 \\______________ any failure: the old version keeps serving ____/

The swap never waits for a diagnosis in flight: it holds the old entry's lock, the new
entry has its own. The old version is stopped in the background once its lock is free,
so a diagnosis that started on it finishes on it. The replaced version's code is kept
(up to ``history_depth`` versions) for :meth:`Reloader.rollback`.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import builtins
from .base import MiddlewarePlugin
from .configschema import apply_config_schema
from .deps import Node
from .discovery import Discovered, discover_path, packaged_manifest, read_plugin_dir
from .errors import PluginError, ReloadError
from .importer import LoadedCode, forget
from .loader import external_extra
from .logcontext import get_logger, log_context
from .models import PluginConfig, PluginInfo, PluginState
from .registry import Entry
from .states import check_transition

if TYPE_CHECKING:
    from .base import Plugin
    from .loader import Loader
    from .registry import Registry
    from .sandbox import Sandbox

S = PluginState
log = get_logger(__name__)


@dataclass
class ReloadReport:
    plugin_id: str
    kind: str
    """``reload`` or ``rollback``."""
    old_version: str
    new_version: str
    location: str
    seconds: dict[str, float] = field(default_factory=dict)
    """Per stage: load, init, start, swap."""
    retired: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set once the old version has finished its calls in flight and is stopped."""
    stop_error: str | None = None

    def wait_retired(self, timeout: float | None = None) -> bool:
        return self.retired.wait(timeout)


ReloadHook = Callable[[ReloadReport], None]


class Reloader:
    """Replaces a registered plugin by a new version of its code, or by the version the
    last reload replaced. Imports through ``loader``; swaps entries in ``registry``."""

    history_depth: int = 3

    def __init__(self, registry: Registry, sandbox: Sandbox, loader: Loader) -> None:
        self.registry = registry
        self.sandbox = sandbox
        self.loader = loader
        self.hooks: list[ReloadHook] = []
        """Called with a ReloadReport after every successful reload or rollback."""
        self._lock = threading.RLock()
        """Reloads and rollbacks run one at a time (a second must see the first's
        result); diagnoses never take this lock."""

    def hot_reload(self, plugin_id: str, source: str | Path | None = None,
                   config: PluginConfig | None = None) -> ReloadReport:
        """Load ``plugin_id`` again (from ``source``, a plugin folder or manifest, when
        given; else from where it came) and swap it in once it is Running."""
        with self._lock, log_context(plugin_id=plugin_id):
            return self._hot_reload(plugin_id, source, config)

    def _hot_reload(self, plugin_id: str, source: str | Path | None,
                    config: PluginConfig | None) -> ReloadReport:
        old = self.registry.entry(plugin_id)
        t0 = time.perf_counter()
        code = _code_of(old)
        try:
            if source is not None:
                item: Discovered | None = discover_path(source)
            elif code.source == "directory":
                assert code.root is not None
                item = read_plugin_dir(Path(code.location), code.root)
            elif code.source == "entry-point":
                item = Discovered(code.manifest, "entry-point", code.location, None,
                                  code.entry, plugin_id)
                if code.manifest is not None:  # it may have changed with the code
                    item = Discovered(packaged_manifest(code.entry), "entry-point",
                                      code.location, None, code.entry, plugin_id)
            else:
                item = None
            if item is None:  # a builtin: a new instance of the same code
                new_code = code
                plugin, info = self._instantiate(plugin_id, code)
            else:
                new_code, plugin, info = self.loader.load_code(item)
        except PluginError as e:
            raise ReloadError(plugin_id, "reload (load)", str(e), code.location,
                              old.info.version) from e
        history = [*_history(old), code]
        return self._activate(old, new_code, plugin, info, config, "reload", history, t0)

    def rollback(self, plugin_id: str, config: PluginConfig | None = None) -> ReloadReport:
        """Go back to the version the last reload replaced."""
        with self._lock, log_context(plugin_id=plugin_id):
            return self._rollback(plugin_id, config)

    def _rollback(self, plugin_id: str, config: PluginConfig | None) -> ReloadReport:
        old = self.registry.entry(plugin_id)
        history = _history(old)
        if not history:
            raise ReloadError(plugin_id, "rollback", "no previous version to roll back to",
                              serving=old.info.version)
        t0 = time.perf_counter()
        prev = history[-1]
        try:
            plugin, info = self._instantiate(plugin_id, prev)
        except PluginError as e:
            raise ReloadError(plugin_id, "rollback (load)", str(e), prev.location,
                              old.info.version) from e
        return self._activate(old, prev, plugin, info, config, "rollback", history[:-1], t0,
                              fresh=False)

    def _instantiate(self, plugin_id: str, code: LoadedCode) -> tuple[Plugin, PluginInfo]:
        def build(_d: object) -> tuple[Plugin, PluginInfo]:
            p = code.factory()
            return p, p.info()

        return self.sandbox.run(plugin_id, "load", build, 10.0).unwrap()

    def _activate(self, old: Entry, code: LoadedCode, plugin: Plugin, info: PluginInfo,
                  config: PluginConfig | None, kind: str, history: list[LoadedCode],
                  t0: float, fresh: bool = True) -> ReloadReport:
        pid = old.info.id
        report = ReloadReport(pid, kind, old.info.version, info.version, code.location)
        report.seconds["load"] = time.perf_counter() - t0
        mtype = plugin.middleware_type() if isinstance(plugin, MiddlewarePlugin) else None
        new = Entry(plugin, info, config or old.config, S.LOADED, code.source,
                    middleware_type=mtype, extra={**external_extra(code), "history": history})

        def fail(stage: str, err: PluginError | str) -> ReloadError:
            new.state, new.last_error = S.FAILED, str(err)
            if fresh and code.module_name != _code_of(old).module_name:
                forget(code.module_name)
            log.error("%s %s to %s failed at %s: %s", kind, pid, info.version, stage, err)
            return ReloadError(pid, f"{kind} to {info.version} ({stage})", str(err),
                               code.location, old.info.version)

        if info.id != pid:
            raise fail("check", f"the new code is plugin {info.id!r}, not {pid!r}")
        if info.type != old.info.type or mtype != old.middleware_type:
            raise fail("check", f"type changed from {old.info.type.value}/{old.middleware_type}"
                       f" to {info.type.value}/{mtype}; load it as a new plugin instead")
        try:
            self.loader.check_requires(Node(pid, info.version, code.manifest.requires
                                     if code.manifest else (), code.location))
        except PluginError as e:
            raise fail("requires", e) from e
        broken = self.loader.dependents_problem(pid, info.version)
        if broken is not None:
            raise fail("dependents", broken)
        t1 = time.perf_counter()
        try:
            cfg = apply_config_schema(pid, code.config_schema, new.config)
        except PluginError as e:
            raise fail("config", e) from e
        out = self.sandbox.run(pid, "init", lambda d: plugin.init(d, cfg), cfg.timeouts.init)
        if out.error is not None:
            raise fail("init", out.error)
        new.config = cfg
        check_transition(pid, new.state, S.INITIALIZED)
        new.state = S.INITIALIZED
        t2 = time.perf_counter()
        out = self.sandbox.run(pid, "start", plugin.start, cfg.timeouts.start)
        if out.error is not None:
            # release what init acquired; the plugin never served
            self.sandbox.run(pid, "stop", plugin.stop, cfg.timeouts.stop)
            raise fail("start", out.error)
        check_transition(pid, new.state, S.RUNNING)
        new.state = S.RUNNING
        t3 = time.perf_counter()
        self.registry.replace(pid, new)
        report.seconds.update(init=t2 - t1, start=t3 - t2, swap=time.perf_counter() - t3)
        for dropped in history[:-self.history_depth] if self.history_depth else history:
            forget(dropped.module_name)
        del history[:-self.history_depth]
        log.info("%s %s: %s -> %s (%s)", kind, pid, old.info.version, info.version,
                 code.location)
        threading.Thread(target=contextvars.copy_context().run, args=(self._retire, old, report),
                         daemon=True,
                         name=f"ksa-retire:{pid}").start()
        for hook in list(self.hooks):
            try:
                hook(report)
            except Exception:  # a failing hook (e.g. storage down) must be visible, not fatal
                log.exception("reload hook failed for %s", pid)
        return report

    def _retire(self, old: Entry, report: ReloadReport) -> None:
        """Stop the replaced version once its calls in flight have finished."""
        cfg = old.config
        got = old.lock.acquire(timeout=cfg.timeouts.diagnose + cfg.timeouts.grace)
        try:
            if old.state is S.RUNNING:
                out = self.sandbox.run(old.info.id, "stop", old.plugin.stop, cfg.timeouts.stop)
                old.state = S.STOPPED if out.error is None else S.FAILED
                if out.error is not None:
                    old.last_error = report.stop_error = str(out.error)
                    log.warning("stopping replaced %s %s failed: %s", old.info.id,
                                old.info.version, out.error)
        finally:
            if got:
                old.lock.release()
            report.retired.set()


def _history(entry: Entry) -> list[LoadedCode]:
    h = entry.extra.get("history")
    return list(h) if isinstance(h, list) else []


def _code_of(entry: Entry) -> LoadedCode:
    code = entry.extra.get("code")
    if isinstance(code, LoadedCode):
        return code
    # a builtin: its registered factory (the same code; builtins upgrade with the package)
    factory = builtins.factory(entry.info.id) or type(entry.plugin)
    return LoadedCode(factory, type(entry.plugin).__module__, None, entry.source,
                      type(entry.plugin).__module__, None, "")
