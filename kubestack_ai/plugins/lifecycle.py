"""The lifecycle state machine (seed section 2.2) and the manager that drives it.

    Unloaded --load--> Loaded --init--> Initialized --start--> Running --stop--> Stopped
                         ^                   |
                         +------reload-------+
    Failed: from any state, on error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from .configschema import apply_config_schema
from .deadline import Deadline
from .errors import ConfigError, PluginError
from .logcontext import get_logger, log_context
from .models import PluginConfig, PluginState
from .registry import Registry
from .sandbox import Sandbox
from .states import TRANSITIONS, check_transition

__all__ = ["TRANSITIONS", "LifecycleFailure", "LifecycleManager", "check_transition"]

S = PluginState
log = get_logger(__name__)


@dataclass(frozen=True)
class LifecycleFailure:
    plugin_id: str
    operation: str
    error: PluginError

    def __str__(self) -> str:
        return str(self.error)


class LifecycleManager:
    """init/start/stop/reload through the sandbox, with the state machine enforced."""

    def __init__(self, registry: Registry, sandbox: Sandbox) -> None:
        self.registry = registry
        self.sandbox = sandbox
        self._health_thread: threading.Thread | None = None
        self._health_stop = threading.Event()
        self._health_failures: dict[str, int] = {}

    def _step(self, plugin_id: str, operation: str, to: PluginState, timeout: float,
              call: Callable[[Deadline], object]) -> None:
        current = self.registry.get_state(plugin_id)
        check_transition(plugin_id, current, to)
        outcome = self.sandbox.run(plugin_id, operation, call, timeout)
        if outcome.error is not None:
            self._locate(plugin_id, outcome.error)
            self.registry.set_state(plugin_id, S.FAILED, error=outcome.error)
            raise outcome.error
        self.registry.set_state(plugin_id, to)

    def _locate(self, plugin_id: str, error: PluginError) -> None:
        """An external plugin's error names its file (the exception keeps its type)."""
        location = self.registry.entry(plugin_id).extra.get("location")
        if location and error.args and isinstance(error.args[0], str):
            error.args = (f"{error.args[0]} ({location})", *error.args[1:])

    def init(self, plugin_id: str, config: PluginConfig | None = None) -> None:
        entry = self.registry.entry(plugin_id)
        plugin = entry.plugin
        cfg = config if config is not None else entry.config
        schema = entry.extra.get("config_schema")
        if schema:
            # an external plugin's manifest schema: validated and defaults filled before init
            try:
                cfg = apply_config_schema(plugin_id, schema, cfg)  # type: ignore[arg-type]
            except ConfigError as e:
                check_transition(plugin_id, entry.state, S.INITIALIZED)
                self._locate(plugin_id, e)
                self.registry.set_state(plugin_id, S.FAILED, error=e)
                raise
        self._step(plugin_id, "init", S.INITIALIZED, cfg.timeouts.init,
                   lambda d: plugin.init(d, cfg))
        self.registry.set_config(plugin_id, cfg)

    def start(self, plugin_id: str) -> None:
        plugin = self.registry.get(plugin_id)
        self._step(plugin_id, "start", S.RUNNING, plugin.config.timeouts.start, plugin.start)

    def stop(self, plugin_id: str) -> None:
        plugin = self.registry.get(plugin_id)
        self._step(plugin_id, "stop", S.STOPPED, plugin.config.timeouts.stop, plugin.stop)

    def reload(self, plugin_id: str, config: PluginConfig | None = None) -> None:
        """Initialized -> Loaded -> Initialized with the new (or same) config."""
        check_transition(plugin_id, self.registry.get_state(plugin_id), S.LOADED)
        self.registry.set_state(plugin_id, S.LOADED)
        self.init(plugin_id, config)

    def start_all(self) -> list[LifecycleFailure]:
        """Init (if Loaded) and start every plugin; one failure does not stop the others."""
        failures: list[LifecycleFailure] = []
        for plugin_id in self.registry.ids():
            try:
                if self.registry.get_state(plugin_id) is S.LOADED:
                    self.init(plugin_id)
                if self.registry.get_state(plugin_id) is S.INITIALIZED:
                    self.start(plugin_id)
            except PluginError as e:
                with log_context(plugin_id=plugin_id):
                    log.error("start %s failed: %s", plugin_id, e)
                failures.append(LifecycleFailure(plugin_id, "start", e))
        return failures

    def stop_all(self) -> list[LifecycleFailure]:
        failures: list[LifecycleFailure] = []
        for plugin_id in self.registry.ids():
            if self.registry.get_state(plugin_id) is not S.RUNNING:
                continue
            try:
                self.stop(plugin_id)
            except PluginError as e:
                with log_context(plugin_id=plugin_id):
                    log.error("stop %s failed: %s", plugin_id, e)
                failures.append(LifecycleFailure(plugin_id, "stop", e))
        return failures

    # -- scheduled health checks ------------------------------------------------------

    def check_health(self, max_failures: int = 3) -> dict[str, PluginError | None]:
        """One round over the Running plugins. A plugin that fails ``max_failures``
        rounds in a row moves to Failed."""
        report: dict[str, PluginError | None] = {}
        for plugin_id in self.registry.ids():
            if self.registry.get_state(plugin_id) is not S.RUNNING:
                continue
            plugin = self.registry.get(plugin_id)
            outcome = self.sandbox.run(plugin_id, "health_check", plugin.health_check,
                                       plugin.config.timeouts.health_check)
            report[plugin_id] = outcome.error
            if outcome.error is None:
                self._health_failures.pop(plugin_id, None)
                continue
            n = self._health_failures.get(plugin_id, 0) + 1
            self._health_failures[plugin_id] = n
            with log_context(plugin_id=plugin_id):
                log.warning("health check %s failed (%d/%d): %s", plugin_id, n, max_failures,
                            outcome.error)
            if n >= max_failures:
                self.registry.set_state(plugin_id, S.FAILED, error=outcome.error)
                self._health_failures.pop(plugin_id, None)
        return report

    def schedule_health_checks(self, interval: float, max_failures: int = 3) -> None:
        """Run :meth:`check_health` every ``interval`` seconds in a daemon thread."""
        self.stop_health_checks()
        self._health_stop = stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    self.check_health(max_failures)
                except Exception:  # the loop must outlive a bad round; it is logged
                    log.exception("health check round failed")

        self._health_thread = threading.Thread(target=loop, name="ksa-health", daemon=True)
        self._health_thread.start()

    def stop_health_checks(self) -> None:
        self._health_stop.set()
        if self._health_thread is not None:
            self._health_thread.join(timeout=5)
            self._health_thread = None
