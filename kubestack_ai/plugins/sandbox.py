"""The in-process sandbox: a deadline, exception capture, an action whitelist, timing.

Each call runs in a daemon thread so that an overrunning plugin cannot hold the caller
past its deadline: the caller gets a timed-out outcome and the deadline passed to the
plugin is cancelled, so a cooperative plugin stops. (A thread cannot be killed; hard
isolation, a killed process and a memory cap, is the Celery worker's job.)

The threads are long-lived and shared (:class:`_Pool`): starting one per call cost about
a fifth of a Redis diagnosis. A call the caller gave up on keeps its thread until it
ends; the next call gets another (an idle one, or a new one). On Linux an idle thread
is moved to the CPU its caller runs on before it is woken: the caller sleeps while the
plugin runs (the GIL lets only one of them run anyway), and a hand-off within one core
cost half of one across cores (tests/framework/test_sandbox.py, bench/README.md).

Every call, in either mode, ends the processes it started and left running
(plugins/children.py).
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .children import ended_with_call
from .deadline import Deadline
from .errors import (
    ActionRefusedError,
    PluginCallError,
    PluginError,
    PluginTimeoutError,
)
from .logcontext import get_logger, log_context
from .models import MiddlewareTarget, PluginConfig, PluginInfo

log = get_logger(__name__)
T = TypeVar("T")
Step = tuple[str, Callable[[Deadline], Any], "float | None"]
"""(operation, fn, timeout) for :meth:`Sandbox.run_steps`."""


def _nothing() -> None:
    """No lock to release."""


def _main_thread() -> bool:
    """Whether the call runs in the main thread (then orphans reparented to it are its)."""
    return threading.current_thread() is threading.main_thread()


class _Pool:
    """Idle daemon threads that run the jobs handed to them, one job at a time.

    A thread goes back to the pool when its job ends, whether or not the caller still
    waits for it; at most ``keep`` idle threads are kept, the others end."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []

    def reset(self) -> None:
        """After fork: the parent's threads do not exist in the child."""
        self._lock = threading.Lock()
        self._idle = []

    def submit(self, name: str, job: Callable[[], None]) -> None:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker()
            threading.Thread(target=self._serve, args=(worker,), name=name, daemon=True).start()
        else:
            worker.follow()
        worker.inbox.put((name, job))

    def _serve(self, worker: _Worker) -> None:
        me = threading.current_thread()
        worker.tid = threading.get_native_id()
        while True:
            name, job = worker.inbox.get()
            me.name = name  # log lines name the plugin call, as a thread per call did
            job()  # never raises: the sandbox's job catches what the plugin raises
            with self._lock:
                if len(self._idle) >= self.keep:
                    return
                self._idle.append(worker)


def _cpu_getter() -> Callable[[], int] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None).sched_getcpu
        fn.restype = ctypes.c_int
        return fn if fn() >= 0 else None
    except (OSError, AttributeError):
        return None


_GETCPU = _cpu_getter()


class _Worker:
    __slots__ = ("cpu", "inbox", "tid")

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[tuple[str, Callable[[], None]]] = queue.SimpleQueue()
        self.tid = 0
        self.cpu = -1

    def follow(self) -> None:
        if _GETCPU is None or not self.tid:
            return
        cpu = _GETCPU()
        if cpu != self.cpu:
            try:
                os.sched_setaffinity(self.tid, {cpu})
                self.cpu = cpu
            except OSError:
                pass


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.reset)


@dataclass
class Outcome(Generic[T]):
    """What a sandboxed call gave: a value or an error, and what it cost."""

    plugin_id: str
    operation: str
    value: T | None = None
    error: PluginError | None = None
    wall: float = 0.0
    cpu: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def timed_out(self) -> bool:
        return isinstance(self.error, PluginTimeoutError)

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


class Sandbox:
    """Runs plugin calls under a deadline and turns any exception into a PluginError."""

    def __init__(self, *, threaded: bool = True, margin: float = 0.1) -> None:
        self.margin = margin
        # threaded=False runs the call in the caller's thread: no deadline enforcement
        # beyond the plugin's own cooperation. Celery workers use it (their time limits
        # are signals to the main thread); the CLI and tests keep the thread.
        self.threaded = threaded

    def run(self, plugin_id: str, operation: str, fn: Callable[[Deadline], T],
            timeout: float | None, deadline: Deadline | None = None,
            release: Callable[[], None] | None = None) -> Outcome[T]:
        return self.run_steps(plugin_id, [(operation, fn, timeout)], deadline, release)[-1]

    def run_steps(self, plugin_id: str, steps: Sequence[Step], deadline: Deadline | None = None,
                  release: Callable[[], None] | None = None) -> list[Outcome[Any]]:
        """Run ``(operation, fn, timeout)`` steps one after another, each under its own
        timeout (counted from its start) within ``deadline``, stopping at the first that
        fails. One thread for all the steps (a connect and a diagnose cost one hand-off,
        not two); the caller still gives up on each step at its own limit. Returns the
        outcomes of the steps that ran, the failed one last. Log lines, the plugin's
        included, carry ``plugin_id`` and the caller's log context.

        ``release`` (the plugin's lock, typically) is called once no step runs any more:
        on return, or, when the caller gave up on a step still running in its thread,
        by that thread when the step ends; until then the plugin (and its connection) is
        still in use and nobody else may use it."""
        with log_context(plugin_id=plugin_id):
            return self._run_steps(plugin_id, steps, deadline, release or _nothing)

    def _run_steps(self, plugin_id: str, steps: Sequence[Step], deadline: Deadline | None,
                   release: Callable[[], None]) -> list[Outcome[Any]]:
        if not self.threaded:
            outs: list[Outcome[Any]] = []
            try:
                for operation, fn, timeout in steps:
                    out: Outcome[Any] = Outcome(plugin_id, operation)
                    self._call(out, fn, self._deadlines(timeout, deadline)[1])
                    outs.append(out)
                    if out.error is not None:
                        break
            finally:
                release()
            return outs
        # One lock, released by the thread when it stops running steps (all done, or one
        # failed): the caller sleeps once and is woken once, whatever the number of steps
        # (a lock per step woke it between connect and diagnose). Each step still has its
        # own limit, counted from its start: the thread notes each step's start and
        # deadline, and a caller whose wait ran out looks whether a later step started
        # meanwhile (then it waits for that one) before it gives up on the step running.
        if not steps:
            release()
            return []
        finished = threading.Lock()
        finished.acquire()
        results: list[Outcome[Any]] = []
        t_first = time.perf_counter()
        first_outer, first_inner = self._deadlines(steps[0][2], deadline)
        starts: list[tuple[float, Deadline, Deadline]] = [(t_first, first_outer, first_inner)]
        abandoned = [False]
        handoff = threading.Lock()
        ended = [False]
        caller_is_main = threading.current_thread() is threading.main_thread()

        def main_waits() -> bool:
            """The main thread still waits for this call (it started no process of its own
            meanwhile): the orphans reparented to it are the call's."""
            return caller_is_main and not abandoned[0]

        def target() -> None:
            try:
                run()
            finally:
                finished.release()
                with handoff:
                    ended[0] = True
                    if abandoned[0]:
                        release()  # the caller gave up on us: the plugin is free only now

        def run() -> None:
            for i, (operation, fn, timeout) in enumerate(steps):
                if abandoned[0]:
                    return
                if i:
                    outer, inner = self._deadlines(timeout, deadline)
                    starts.append((time.perf_counter(), outer, inner))
                out: Outcome[Any] = Outcome(plugin_id, operation)
                self._call(out, fn, starts[i][2], main_waits)
                results.append(out)
                if out.error is not None:
                    return

        name = f"ksa:{plugin_id}:{steps[0][0] if steps else ''}"
        # the plugin's thread logs in the caller's context (plugin id, target key)
        ctx = contextvars.copy_context()
        _POOL.submit(name, lambda: ctx.run(target))

        def give_up() -> None:
            with handoff:
                abandoned[0] = True
                if ended[0]:
                    release()
            starts[-1][2].cancel()

        while True:
            i = len(starts) - 1
            t0, outer, _inner = starts[i]
            if len(results) > i:
                # step i ended and the next has not noted its start yet (microseconds):
                # a short sleep lets the thread go on
                limit = 0.001
            elif outer.at != float("inf"):
                limit = outer.remaining()
            else:
                limit = -1  # no limit at all: wait for the thread
            try:
                answered = finished.acquire(True, limit)
            except BaseException:  # interrupted while waiting (Ctrl-C): the thread frees it
                give_up()
                raise
            if answered:
                break
            if len(starts) - 1 > i or len(results) > i:
                continue  # step i ended in time: wait for the one that follows
            give_up()
            operation, timeout = steps[i][0], steps[i][2]
            wall = time.perf_counter() - t0
            log.warning("plugin %s %s timed out after %.3fs", plugin_id, operation, wall)
            return [*results[:i], Outcome(plugin_id, operation, error=PluginTimeoutError(
                plugin_id, operation, timeout if timeout is not None else wall), wall=wall)]
        release()
        return list(results)

    def _deadlines(self, timeout: float | None, deadline: Deadline | None,
                   ) -> tuple[Deadline, Deadline]:
        """(the caller's, the plugin's): the plugin's comes a little before the caller's,
        so that a plugin that honours it can return what it found before the caller gives
        up on it."""
        outer = deadline.child(timeout) if deadline is not None else Deadline(timeout)
        left = outer.remaining()
        inner = outer.child(left - min(self.margin, left * 0.1)) if left != float("inf") else outer
        return outer, inner

    @staticmethod
    def _call(out: Outcome[T], fn: Callable[[Deadline], T], d: Deadline,
              main_waits: Callable[[], bool] = _main_thread) -> None:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            with ended_with_call(out.plugin_id, out.operation, main_waits):
                out.value = fn(d)
        except PluginError as e:
            # the framework's own errors (connect, auth, refusal) keep their type
            out.error = e
        except Exception as e:  # plugin code may raise anything; it becomes a structured error
            log.debug("plugin %s %s raised", out.plugin_id, out.operation, exc_info=True)
            out.error = PluginCallError(out.plugin_id, out.operation, f"{type(e).__name__}: {e}")
        finally:
            out.wall = time.perf_counter() - w0
            out.cpu = time.thread_time() - c0

    @staticmethod
    def check_action(info: PluginInfo, config: PluginConfig, action: str,
                     target: MiddlewareTarget | None = None) -> None:
        """Refuse an action the plugin does not declare or its config does not allow."""
        if action not in info.actions:
            declared = ", ".join(info.actions) or "none"
            raise ActionRefusedError(info.id, action, f"not declared by the plugin (declared: {declared})")
        allowed = config.allowed_actions
        if allowed is not None and action not in allowed:
            raise ActionRefusedError(info.id, action, "not in the plugin config's allowed_actions")
        if action in info.dangerous_actions:
            by_target = target is not None and action in target.allow_actions
            by_config = allowed is not None and action in allowed
            if not (by_target or by_config):
                raise ActionRefusedError(
                    info.id, action,
                    "it destroys data or changes configuration; allow it by name in the "
                    "target's allow_actions or the plugin config's allowed_actions")

    def execute(self, info: PluginInfo, config: PluginConfig, action: str,
                fn: Callable[[Deadline], T], target: MiddlewareTarget | None = None,
                params: Mapping[str, Any] | None = None) -> Outcome[T]:
        try:
            self.check_action(info, config, action, target)
        except ActionRefusedError as e:
            return Outcome(info.id, f"execute {action}", error=e)
        return self.run(info.id, f"execute {action}", fn, config.timeouts.execute)
