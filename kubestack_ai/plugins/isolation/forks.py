"""The worker's handle on its zygote (zygote.py) and on the hosts it forks.

One zygote per process (a forked worker child starts its own on first use); restarted
when it died. Requests are serialised by a lock: a worker child runs one task at a time,
but a CLI's sandbox threads may share the pool.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import threading
from typing import Any

from . import protocol

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "TMPDIR": "/tmp"}
"""The whole environment of the zygote, and so of every host."""
START_TIMEOUT = 30.0


class ZygoteError(Exception):
    pass


class Zygote:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.pid = os.getpid()

    def _ensure(self) -> socket.socket:
        if self.sock is not None and self.proc is not None and self.proc.poll() is None:
            return self.sock
        self.close()
        parent, child = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "kubestack_ai.plugins.isolation.zygote",
                 str(child.fileno())], pass_fds=(child.fileno(),), env=ENV,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)
        finally:
            child.close()
        parent.settimeout(START_TIMEOUT)
        try:
            protocol.recv(parent)
        except (OSError, protocol.ProtocolError) as e:
            parent.close()
            raise ZygoteError(f"the plugin host zygote did not start: {e}") from None
        parent.settimeout(None)
        self.sock = parent
        return parent

    def request(self, msg: dict[str, Any], fds: tuple[int, ...] = ()) -> dict[str, Any]:
        with self.lock:
            for attempt in (1, 2):
                sock = self._ensure()
                try:
                    protocol.send(sock, msg, fds)
                    answer, extra = protocol.recv(sock)
                except (OSError, protocol.ProtocolError) as e:
                    self.close()
                    if attempt == 2 or msg.get("op") != "spawn":
                        raise ZygoteError(f"the plugin host zygote failed: {e}") from None
                    continue
                for fd in extra:
                    os.close(fd)
                return answer
        raise ZygoteError("unreachable")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
            self.proc = None


_zygote: Zygote | None = None
_zlock = threading.Lock()


def zygote() -> Zygote:
    global _zygote
    with _zlock:
        if _zygote is None or _zygote.pid != os.getpid():
            _zygote = Zygote()  # a forked child does not share its parent's
            atexit.register(_zygote.close)
        return _zygote


class Forked:
    """A host the zygote forked: poll/wait/kill as subprocess.Popen has them."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.gone = False

    def wait(self, timeout: float = 0.0) -> int | None:
        if self.returncode is not None or self.gone:
            return self.returncode
        try:
            answer = zygote().request({"op": "wait", "pid": self.pid, "timeout": timeout})
        except ZygoteError:
            self.gone = True
            return None
        if answer.get("gone"):
            self.gone = True
        self.returncode = answer.get("status")
        return self.returncode

    def poll(self) -> int | None:
        return self.wait(0.0)

    @property
    def running(self) -> bool:
        return self.poll() is None and not self.gone

    def kill(self) -> None:
        if self.running:
            with contextlib.suppress(ZygoteError):
                zygote().request({"op": "kill", "pid": self.pid})
            self.wait(5.0)


def spawn(namespaces: bool, sock_fd: int, life_fd: int) -> Forked:
    answer = zygote().request({"op": "spawn", "namespaces": namespaces}, (sock_fd, life_fd))
    if "pid" not in answer:
        raise ZygoteError(str(answer.get("error") or "spawn refused"))
    return Forked(int(answer["pid"]))
