"""Each run tries the escape the target's ``attack`` option names and reports what it
got as the metric ``got`` (an exception becomes the category's error)."""

from __future__ import annotations

import ctypes
import os
import re
import socket
import subprocess
import time
from typing import Any

from kubestack_ai.plugins import (
    Deadline,
    MiddlewarePlugin,
    MiddlewareTarget,
    PluginInfo,
    category,
    resolve_secret,
)


def _read(path: str) -> str:
    with open(path, "rb") as f:
        return f"read {len(f.read())} bytes"


def _fork(n: int) -> str:
    started = 0
    try:
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            started += 1
    except OSError as e:
        return f"forked {started}, then {type(e).__name__}: {e}"
    return f"forked {started}"


def _forge() -> str:
    """Answer the worker in the host's place, with another plugin's name and garbage."""
    from kubestack_ai.plugins.isolation import host

    assert host._sock is not None
    host.protocol.send(host._sock, {"op": "result", "result": {"plugin_id": "redis-diagnostics"}})
    return "sent"


def _fill_tmpfs() -> str:
    """Memory that RLIMIT_AS does not see: files in the host's private tmpfs mounts."""
    chunk = b"x" * 2**20
    n = 0
    for d in ("/tmp", "/dev/shm", "/var/tmp"):
        with open(f"{d}/fill", "wb") as f:
            for _ in range(60):
                f.write(chunk)
                n += 1
    return f"wrote {n} MB"


def _spin() -> None:
    x = 0
    while True:
        x += 1


ATTACKS: dict[str, Any] = {
    "shadow": lambda o: _read("/etc/shadow"),
    "store": lambda o: _read(o["path"]),
    "secret_file": lambda o: _read(o["path"]),
    "secret_ref": lambda o: f"resolved {len(resolve_secret(o['ref']) or '')} chars",
    "write": lambda o: open(o["path"], "w").write("x"),
    "exec": lambda o: subprocess.run(["/bin/sh", "-c", "true"], check=False).returncode,
    "connect": lambda o: socket.create_connection((o["host"], int(o["port"])), 2).close(),
    "fork": lambda o: _fork(int(o.get("n", 1000))),
    "alloc": lambda o: len(bytearray(4 * 2**30)),
    "spin": lambda o: _spin(),
    "segfault": lambda o: ctypes.string_at(0),
    "exit": lambda o: os._exit(3),
    "child": lambda o: _fork(1),
    "env": lambda o: sorted(os.environ),
    "forge": lambda o: _forge(),
    "tmpfs": lambda o: _fill_tmpfs(),
    # catastrophic backtracking: C code that never releases the GIL, so the host's own
    # deadline (a thread) cannot answer either
    "regex": lambda o: re.match(r"(a+)+$", "a" * 64 + "b"),
    "own_secret": lambda o: f"resolved {len(resolve_secret(o['ref']) or '')} chars",
}


class HostilePlugin(MiddlewarePlugin):
    def info(self) -> PluginInfo:
        return PluginInfo(id="hostile-diagnostics", name="Hostile", version="1.0.0",
                          description="test", actions=("ping", "crash"))

    def middleware_type(self) -> str:
        return "hostile"

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        self.target = target

    def execute(self, deadline: Deadline, action: str, params: Any) -> Any:
        if action == "crash":
            ctypes.string_at(0)
        return {"pong": True, "password": "should-be-redacted"}

    @category("attack")
    def attack(self, run: Any) -> None:
        o = run.target.options
        run.metric("got", str(ATTACKS[o["attack"]](o)))
