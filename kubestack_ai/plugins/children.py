"""Processes a plugin call leaves behind are ended with the call.

A plugin's import, ``init``, ``diagnose`` or any other call may start processes (a
``subprocess.Popen`` never waited for, a double-forked daemon). Left alone they outlive
``ksa plugin list``, ``ksa diagnose`` and the worker child that ran the call, hold its
pipes open, and show up as orphans named like their parent. So every sandboxed call
runs inside :func:`ended_with_call`:

1. the process becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``, once per process:
   the flag is not inherited across fork), so that a daemon that double-forks away is
   reparented to us rather than to init;
2. the children of the calling thread, and of the main thread (where the kernel
   reparents orphans), are noted before the call; the main thread's count only when it
   did nothing but wait for the call (it may start processes of its own otherwise:
   a call running in a sandbox thread the caller gave up on);
3. after the call, every child that was not there before is ended with its whole tree
   (SIGKILL: the call is over, nothing it started may run on) and reaped, and a warning
   names the plugin, the call and the pids.

Children are read from ``/proc/self/task/<tid>/children`` (a thread's own children:
another thread's call or the caller's own subprocesses are not touched), falling back
to a scan of ``/proc/*/stat`` where the kernel lacks that file. A plugin that needs a
helper process runs it within the call and waits for it. Not Linux: nothing is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from .logcontext import get_logger

log = get_logger(__name__)

PR_SET_CHILD_SUBREAPER = 36
REAP_SECONDS = 2.0
"""How long the reaping of what was killed may take (a SIGKILLed process dies at once)."""

_subreaper_pid = 0
ended_total = 0
"""Processes ended after plugin calls in this process, all told (a plugin host reports
the ones of its run)."""
_lock = threading.Lock()
_ENABLED = os.path.isdir("/proc/self/task")


def _become_subreaper() -> None:
    global _subreaper_pid
    pid = os.getpid()
    if _subreaper_pid == pid:
        return
    with _lock:
        if _subreaper_pid == pid:
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                log.warning("cannot become a child subreaper (errno %d): a daemon a plugin "
                            "double-forks may outlive it", ctypes.get_errno())
        except (OSError, AttributeError) as e:
            log.warning("cannot become a child subreaper (%s)", e)
        _subreaper_pid = pid


class _Reader:
    """One thread's ``children`` file, kept open: it runs twice around every plugin call,
    and a ``pread`` at 0 (procfs renders the file afresh) costs a third of an open."""

    __slots__ = ("fd",)

    def __init__(self, tid: int) -> None:
        self.fd = os.open(f"/proc/{os.getpid()}/task/{tid}/children",
                          os.O_RDONLY | os.O_CLOEXEC)

    def read(self) -> bytes:
        return os.pread(self.fd, 1 << 16, 0)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


_readers = threading.local()
"""Per thread (closed with it): (pid, {tid: _Reader}); a forked child opens its own."""


def _read_children(tid: int) -> bytes:
    pid = os.getpid()
    cache: tuple[int, dict[int, _Reader]] | None = getattr(_readers, "cache", None)
    if cache is None or cache[0] != pid:
        cache = (pid, {})
        _readers.cache = cache
    readers = cache[1]
    reader = readers.get(tid)
    if reader is None:
        reader = readers[tid] = _Reader(tid)
    try:
        return reader.read()
    except OSError:
        del readers[tid]  # the thread ended (or the file went stale): open it afresh
        raise


def _children(tids: Iterable[int]) -> set[int]:
    out: set[int] = set()
    for tid in set(tids):
        try:
            text = _read_children(tid)
            if text:
                out.update(map(int, text.split()))
        except FileNotFoundError:
            if not os.path.exists(f"/proc/self/task/{tid}"):
                continue  # the thread ended
            return {pid for pid, ppid in _parents().items() if ppid == os.getpid()}
        except OSError:
            continue
    return out


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                # the command name may hold spaces and parentheses: split after the last ")"
                out[int(name)] = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return out


def _tree(roots: set[int]) -> list[int]:
    """``roots`` and all their descendants."""
    kids: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, ()))
    return out


def end_processes(roots: set[int]) -> list[int]:
    """SIGKILL ``roots`` with their trees, then reap what becomes ours; the pids killed."""
    pids = _tree(roots)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    pending = set(pids)
    until = time.monotonic() + REAP_SECONDS
    while pending and time.monotonic() < until:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                # not (yet) ours: gone, or a grandchild the kernel is reparenting to us
                if not os.path.exists(f"/proc/{pid}"):
                    pending.discard(pid)
                continue
            if done == pid:
                pending.discard(pid)
        if pending:
            time.sleep(0.005)
    return pids


def _always() -> bool:
    return True


@contextlib.contextmanager
def ended_with_call(plugin_id: str, operation: str,
                    main_waits: Callable[[], bool] = _always) -> Iterator[None]:
    """Run a plugin call; whatever process it started and left running is ended after.

    Orphans are reparented to the main thread, which may start processes of its own: its
    new children count only when ``main_waits()`` says, after they were read, that the
    main thread did nothing but wait for this call meanwhile (the sandbox knows)."""
    if not _ENABLED:
        yield
        return
    _become_subreaper()
    own, main = threading.get_native_id(), os.getpid()
    before = _children((own, main))
    try:
        yield
    finally:
        left = _children((own,))
        if own != main:
            orphans = _children((main,))
            if main_waits():
                left |= orphans
        left -= before
        if left:
            global ended_total
            ended = end_processes(left)
            ended_total += len(ended)
            log.warning("plugin %s %s left %d process%s running (pids %s): ended", plugin_id,
                        operation, len(ended), "es" if len(ended) != 1 else "",
                        ", ".join(map(str, sorted(ended))))
