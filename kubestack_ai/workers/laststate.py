"""The plugin states (enabled or disabled) last read from storage, for when it cannot be.

A worker child asks storage at every task whether the task's plugin is enabled. When
storage cannot be read the answer is the last one read: by this process, else by any
worker on this machine (``$KSA_HOME/plugin-states.json``, rewritten whenever a state
read differs from it, so that a worker restarted during an outage goes on as it was).
With none, the plugin is refused: it may have been disabled (fail closed).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from kubestack_ai.plugins.logcontext import get_logger

log = get_logger(__name__)

FILE_NAME = "plugin-states.json"


class LastStates:
    """Plugin id -> enabled, in memory and (``path`` given) on local disk."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._mem: dict[str, bool] = {}

    def get(self, plugin_id: str) -> bool | None:
        """The last state read of ``plugin_id``, or None when none was ever read here."""
        if plugin_id in self._mem:
            return self._mem[plugin_id]
        return self._read().get(plugin_id)

    def put(self, plugin_id: str, enabled: bool) -> None:
        """What storage just said; written to disk only when it changed."""
        if self._mem.get(plugin_id) == enabled:
            return
        self._mem[plugin_id] = enabled
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_suffix(".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # read-modify-write by several children
                states = self._read()
                if states.get(plugin_id) == enabled:
                    return
                states[plugin_id] = enabled
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                with open(tmp, "w") as f:
                    json.dump(states, f, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
        except OSError as e:  # the memory still holds it; say the disk does not
            log.warning("plugin %s: last state not kept in %s: %s", plugin_id, self.path, e)

    def _read(self) -> dict[str, bool]:
        if self.path is None:
            return {}
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}  # none read on this machine yet
        except (OSError, ValueError) as e:
            log.warning("last plugin states in %s unreadable (%s): none known", self.path, e)
            return {}
        if isinstance(data, dict):
            return {str(k): v for k, v in data.items() if isinstance(v, bool)}
        return {}
