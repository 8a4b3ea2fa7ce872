"""A call the threaded sandbox gave up on (it timed out) may still be running in its
thread, on the plugin's shared connection: the plugin stays locked until that thread has
finished, so the next call waits for it (or answers "busy"), never shares the connection."""

from __future__ import annotations

import threading
import time

from kubestack_ai.plugins import (
    Deadline,
    DiagnoseOptions,
    MiddlewarePlugin,
    MiddlewareTarget,
    PluginInfo,
    PluginManager,
    Run,
    category,
)

TARGET = MiddlewareTarget(type="shared", endpoints=("127.0.0.1:1",))


class SharedConnection(MiddlewarePlugin):
    """A category that reads for 0.6 s on the shared connection and ignores its deadline
    (a blocking driver call)."""

    def __init__(self) -> None:
        super().__init__()
        self.users = 0
        self.most = 0
        self.guard = threading.Lock()

    def info(self) -> PluginInfo:
        return PluginInfo(id="shared-conn", name="Shared", version="1.0.0")

    def middleware_type(self) -> str:
        return "shared"

    def _use(self) -> None:
        with self.guard:
            self.users += 1
            self.most = max(self.most, self.users)
        time.sleep(0.6)
        with self.guard:
            self.users -= 1

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        with self.guard:
            self.most = max(self.most, self.users + 1)  # connecting while in use: shared
        self.target = target

    @category("basic")
    def check_basic(self, run: Run) -> None:
        self._use()
        run.metric("ok", 1)


def test_next_call_waits_for_the_abandoned_one() -> None:
    m = PluginManager()
    plugin = SharedConnection()
    m.register(plugin)
    try:
        first = m.diagnose(TARGET, DiagnoseOptions(), timeout=0.2)
        assert first.outcome == "timed_out"
        t0 = time.monotonic()
        second = m.diagnose(TARGET, DiagnoseOptions(), timeout=3)
        assert second.outcome == "completed", second.errors
        assert plugin.most == 1  # never two calls on the connection at once
        assert time.monotonic() - t0 >= 0.3  # it waited for the first one's thread
        busy = m.diagnose(TARGET, DiagnoseOptions(), timeout=0.2)  # abandoned again
        assert busy.outcome == "timed_out"
        again = m.diagnose(TARGET, DiagnoseOptions(), timeout=0.1)  # still held: busy
        assert again.errors["_run"] == "plugin 'shared-conn' is still busy with an earlier call"
        assert plugin.most == 1
    finally:
        time.sleep(0.7)
        m.stop_all()
