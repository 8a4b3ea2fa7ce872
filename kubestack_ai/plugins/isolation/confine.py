"""What the plugin host does to itself before it imports plugin code, in order: mounts
(in its own mount namespace), privileges, resource limits, the seccomp filter. Each
step reports whether it took effect; the worker shows and stores what did.

Runs in the host process only (it changes the calling process for good).
"""

from __future__ import annotations

import ctypes
import os
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import seccomp

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
NOBODY = 65534

_libc = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, arg: int) -> None:
    if _libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _mount(src: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    if _libc.mount(src.encode(), target.encode(), fstype.encode() if fstype else None,
                   ctypes.c_ulong(flags), data.encode() if data else None) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {target}: {os.strerror(e)}")


_FLAG_OPTS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}


def _mounts() -> list[tuple[str, int]]:
    """(mount point, flags to keep) of every mount this namespace sees."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        parts = line.split()
        point = parts[4].replace("\\040", " ")
        flags = 0
        for opt in parts[5].split(","):
            flags |= _FLAG_OPTS.get(opt, 0)
        out.append((point, flags))
    return out


def mount_view(hide: Sequence[str], keep: Sequence[str] = (),
               keep_writable: Sequence[str] = ("/proc",)) -> list[str]:
    """In a fresh mount namespace: ``hide`` (a file: /dev/null over it; a folder: an
    empty read-only tmpfs over it), every mount read-only, then a private /tmp and
    /dev/shm; a folder of ``keep`` under one of those (the plugin's own) is bound back,
    read-only. Returns the problems (an empty list: all done)."""
    problems: list[str] = []
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    for p in hide:
        try:
            if os.path.isdir(p):
                _mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=555")
            elif os.path.lexists(p):
                _mount("/dev/null", p, None, MS_BIND)
        except OSError as e:
            problems.append(f"hide {p}: {e.strerror}")
    for point, flags in _mounts():
        if point in keep_writable or point.startswith(("/proc/", "/sys/fs/cgroup")):
            continue
        try:
            _mount("none", point, None, MS_BIND | MS_REMOUNT | MS_RDONLY | flags)
        except OSError as e:
            if point == "/":
                problems.append(f"read-only /: {e.strerror}")
    for p in ("/tmp", "/dev/shm", "/var/tmp"):
        if not os.path.isdir(p) or os.path.islink(p):
            continue
        under = [k for k in keep if k.startswith(p.rstrip("/") + "/") and os.path.isdir(k)]
        fds = [os.open(k, os.O_RDONLY | os.O_DIRECTORY) for k in under]
        try:
            _mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
            for k, fd in zip(under, fds, strict=True):
                os.makedirs(k, exist_ok=True)
                _mount(f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
                _mount("none", k, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        except OSError as e:
            problems.append(f"private {p}: {e.strerror}")
        finally:
            for fd in fds:
                os.close(fd)
    return problems


def readable_by_others(path: str) -> bool:
    p = Path(path).resolve()
    for part in [p, *p.parents]:
        try:
            if not os.stat(part).st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def drop_privileges(needed: Sequence[str]) -> str:
    """As root: become nobody when ``needed`` (the Python install, the plugin's folder)
    stays readable so, else stay uid 0 with no capabilities at all. Says which."""
    if os.geteuid() != 0:
        return f"uid {os.getuid()}"
    if not _in_user_namespace() and all(readable_by_others(p) for p in needed):
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        prctl(PR_SET_DUMPABLE, 1)  # /proc/self stays ours (peak-memory reset)
        return "nobody"
    drop_capabilities()
    return "uid 0 without capabilities (the Python install is not readable by nobody)"


def drop_capabilities() -> None:
    """Empty bounding, effective, permitted and inheritable capability sets."""
    for cap in range(64):
        if _libc.prctl(24, ctypes.c_ulong(cap), 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    data = (ctypes.c_uint32 * 6)()
    if _libc.capset(header, data) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"capset: {os.strerror(e)}")


def _in_user_namespace() -> bool:
    try:
        first = Path("/proc/self/uid_map").read_text().split()
        return first[:3] != ["0", "0", "4294967295"]
    except OSError:
        return False


def set_rlimits(memory_mb: int | None, pids_max: int | None) -> dict[str, Any]:
    """RLIMIT_AS from the memory limit, RLIMIT_NPROC from pids_max (effective only for
    a user other than root), no core files. RLIMIT_CPU is set per run (:func:`cpu_budget`)."""
    done: dict[str, Any] = {}
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_mb:
        b = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (b, b))
        done["RLIMIT_AS"] = b
    if pids_max:
        resource.setrlimit(resource.RLIMIT_NPROC, (pids_max, pids_max))
        done["RLIMIT_NPROC"] = pids_max
    return done


def cpu_budget(seconds: float) -> None:
    """The host may use ``seconds`` more CPU time: SIGXCPU (ends the host) past it."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    used = ru.ru_utime + ru.ru_stime
    soft = int(used + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    # the hard limit stays (an unprivileged host could not raise it for the next run);
    # a plugin that ignores SIGXCPU is killed by the worker at the run's hard limit
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def lock_down() -> list[str]:
    """No new privileges, then the seccomp filter. Returns the skipped syscall names."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    return seccomp.install()
