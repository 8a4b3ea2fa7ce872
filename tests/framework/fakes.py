"""Small plugins that misbehave on purpose, for the framework's tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from kubestack_ai.plugins import (
    ConfigError,
    Deadline,
    MiddlewarePlugin,
    MiddlewareTarget,
    PluginConfig,
    PluginInfo,
    Run,
    Severity,
    category,
)


class FakePlugin(MiddlewarePlugin):
    """``fail`` maps an operation name to "raise" or "hang"."""

    def __init__(self, plugin_id: str = "fake", mtype: str = "fake",
                 fail: Mapping[str, str] | None = None, actions: tuple[str, ...] = ("ping",),
                 dangerous: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._id = plugin_id
        self._mtype = mtype
        self.fail = dict(fail or {})
        self._actions = actions
        self._dangerous = dangerous
        self.calls: list[str] = []
        self.release = threading.Event()

    def _maybe_fail(self, op: str, deadline: Deadline | None = None) -> None:
        self.calls.append(op)
        how = self.fail.get(op)
        if how == "raise":
            raise RuntimeError(f"{op} exploded")
        if how == "config":
            raise ConfigError(f"{op}: option 'x' is missing")
        if how == "hang":
            self.release.wait(30)
        if how == "hang-cooperative" and deadline is not None:
            while not deadline.expired:
                time.sleep(0.005)
            deadline.check(op)

    def info(self) -> PluginInfo:
        if self.fail.get("info") == "raise":
            raise RuntimeError("info exploded")
        if self.fail.get("info") == "hang":
            self.release.wait(30)
        return PluginInfo(id=self._id, name=f"Fake {self._id}", version="1.0.0",
                          capabilities=("diagnose",), actions=self._actions,
                          dangerous_actions=self._dangerous)

    def middleware_type(self) -> str:
        return self._mtype

    def init(self, deadline: Deadline, config: PluginConfig) -> None:
        self._maybe_fail("init", deadline)
        if "bad" in config.options:
            raise ConfigError(f"plugin {self._id!r}: option 'bad' is not allowed")
        super().init(deadline, config)

    def start(self, deadline: Deadline) -> None:
        self._maybe_fail("start", deadline)

    def stop(self, deadline: Deadline) -> None:
        self._maybe_fail("stop", deadline)

    def health_check(self, deadline: Deadline) -> None:
        self._maybe_fail("health_check", deadline)

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        self._maybe_fail("connect", deadline)
        self.target = target

    @category("alpha")
    def check_alpha(self, run: Run) -> None:
        self._maybe_fail("alpha", run.deadline)
        run.metric("alpha", 1)
        run.finding("fake.alpha.something", Severity.WARNING, "Alpha is off",
                    evidence={"value": 1}, suggestion="Fix alpha.")

    @category("beta")
    def check_beta(self, run: Run) -> None:
        self._maybe_fail("beta", run.deadline)
        run.metric("beta", 2)

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        self._maybe_fail("execute", deadline)
        return {"action": action, **params}
