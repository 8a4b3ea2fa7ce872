"""A clean, pre-imported process that forks plugin hosts: host start-up without paying
for Python and pydantic each time (the seed's forkserver, as multiprocessing has one).

Started once per worker child, as a host would be (``python -I``, an empty environment,
nothing of the worker's memory): it never sees a secret, only the socket pairs it hands
to the hosts it forks. Requests over its control socket, one at a time:

    spawn {"namespaces": bool}  + two fds  -> {"pid": N}        fork a host
    wait  {"pid": N, "timeout": s}         -> {"status": code}  None while it runs
    kill  {"pid": N}                       -> {"ok": true}      SIGKILL its process group

A spawned host with namespaces is forked twice: the first child enters new user (when
not root), mount, IPC, UTS, network and PID namespaces, and forks the host as PID 1 of
the new PID namespace; it waits for it and ends the same way (the same exit status, or
the same signal), so ``wait`` reports what the host did. It ends when the worker closes
the control socket.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import sys
import time
from typing import Any

from . import protocol

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"unshare: {os.strerror(e)}")


def _enter_namespaces() -> None:
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID
    if uid != 0:
        _unshare(flags | CLONE_NEWUSER)
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"0 {gid} 1")
    else:
        _unshare(flags)


def _mount_proc() -> None:
    from .confine import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC, _mount

    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _child(fds: list[int], namespaces: bool) -> None:
    """In the first child (never returns)."""
    code = 70
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if not namespaces:
            from .host import main

            os._exit(main(["host", str(fds[0]), str(fds[1])]))
        _enter_namespaces()
        pid = os.fork()
        if pid == 0:
            try:
                from .confine import PR_SET_PDEATHSIG, prctl

                prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                _mount_proc()
                from .host import main

                os._exit(main(["host", str(fds[0]), str(fds[1])]))
            except BaseException:  # noqa: BLE001 (a host that cannot start says so by exiting)
                os._exit(71)
        for fd in fds:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
                signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            time.sleep(1)
        code = os.waitstatus_to_exitcode(status)
    except BaseException:  # noqa: BLE001
        code = 72
    os._exit(code)


def serve(ctrl: socket.socket) -> None:
    statuses: dict[int, int] = {}
    while True:
        try:
            msg, fds = protocol.recv(ctrl)
        except (protocol.ProtocolError, OSError):
            return
        op = msg.get("op")
        reply: dict[str, Any]
        if op == "spawn" and len(fds) == 2:
            pid = os.fork()
            if pid == 0:
                ctrl.close()
                _child(fds, bool(msg.get("namespaces")))
            for fd in fds:
                os.close(fd)
            reply = {"pid": pid}
        elif op == "wait":
            pid = int(msg["pid"])
            deadline = time.monotonic() + float(msg.get("timeout") or 0)
            status = statuses.pop(pid, None)
            while status is None:
                try:
                    got, st = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    status = -9999
                    break
                if got:
                    status = os.waitstatus_to_exitcode(st)
                    break
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.002)
            reply = {"status": None if status == -9999 else status, "gone": status == -9999}
        elif op == "kill":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(msg["pid"]), signal.SIGKILL)
            reply = {"ok": True}
        else:
            for fd in fds:
                os.close(fd)
            reply = {"error": f"unknown request {op!r}"}
        protocol.send(ctrl, reply)


def main(argv: list[str]) -> int:
    ctrl = socket.socket(fileno=int(argv[1]))
    # what every host needs, imported once here and shared by every fork
    import kubestack_ai.plugins.base
    import kubestack_ai.plugins.discovery
    import kubestack_ai.plugins.manager
    import kubestack_ai.plugins.manifest  # noqa: F401

    from . import host  # noqa: F401

    protocol.send(ctrl, {"ready": True})
    serve(ctrl)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
