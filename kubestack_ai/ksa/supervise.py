"""``ksa run``'s processes (worker, beat, web view) kept running until the operator stops.

A process that exits when nobody asked it to is started again after a back-off (2 s,
doubled up to 60 s while it keeps dying young; back to 2 s once it has run a minute),
and the terminal says so:

    ksa run: worker exited (code 1): restarting in 2 s

Only ``stop()`` (Ctrl-C or SIGTERM to ``ksa run``) ends them. Polled from ``ksa run``'s
loop: nothing here blocks or spawns threads.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

FIRST_BACKOFF = 2.0
MAX_BACKOFF = 60.0
STABLE_AFTER = 60.0
"""Seconds a process must run for its next restart to wait FIRST_BACKOFF again."""


def exit_text(rc: int) -> str:
    """``code 1``, or ``signal SIGKILL`` for a process a signal ended."""
    if rc >= 0:
        return f"code {rc}"
    try:
        return f"signal {signal.Signals(-rc).name}"
    except ValueError:
        return f"signal {-rc}"


@dataclass
class Child:
    name: str
    cmd: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    backoff: float = FIRST_BACKOFF
    restarts: int = 0


class Supervisor:
    def __init__(self, env: dict[str, str], stdout: IO[Any] | int | None = None,
                 say: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.env = env
        self.stdout = stdout if stdout is not None else sys.stderr
        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.clock = clock
        self.children: list[Child] = []
        self.stopped = False

    def start(self, name: str, cmd: list[str]) -> Child:
        child = Child(name, cmd)
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.cmd, env=self.env, stdout=self.stdout)
        child.started = self.clock()
        child.restart_at = None

    def poll(self) -> None:
        """Notice exits and schedule restarts; start those whose back-off has passed."""
        if self.stopped:
            return
        now = self.clock()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                rc = child.proc.returncode
                if now - child.started >= STABLE_AFTER:
                    child.backoff = FIRST_BACKOFF
                wait = child.backoff
                child.backoff = min(child.backoff * 2, MAX_BACKOFF)
                child.proc = None
                child.restart_at = now + wait
                self.say(f"ksa run: {child.name} exited ({exit_text(rc)}): "
                         f"restarting in {wait:g} s")
            if child.proc is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to every running process, then SIGKILL to those still up after
        ``timeout``; none is restarted after this."""
        self.stopped = True
        running = [c.proc for c in self.children if c.proc is not None]
        for c in self.children:
            c.proc, c.restart_at = None, None
        for p in running:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in running:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
