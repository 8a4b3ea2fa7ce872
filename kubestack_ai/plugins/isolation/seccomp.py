"""The plugin host's system-call filter, through libseccomp (the ``pyseccomp`` binding).

Every call is allowed except the ones below, which fail with ``EPERM``: the plugin sees
an ordinary ``PermissionError`` (``subprocess.run(["sh"])`` raises it) and the run goes
on. Loaded after ``PR_SET_NO_NEW_PRIVS``, once the host has set up its namespaces and
dropped its privileges, so that nothing after it can undo them.
"""

from __future__ import annotations

import errno

DENIED = (
    "execve", "execveat",                      # no shelling out, no other program
    "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsmount",
    "fsopen", "fsconfig", "fspick",
    "unshare", "setns",
    "kexec_load", "kexec_file_load",
    "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key",
    "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime",
)
"""The denied calls: the issue's list, plus their close relatives (reading another
process's memory without ptrace, the new mount API, chroot)."""


def unavailable() -> str | None:
    """Why the filter cannot be loaded here, or None."""
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError) as e:
        return f"libseccomp binding not importable ({type(e).__name__}: {e})"
    return None


def install() -> list[str]:
    """Load the filter into this process (and its future children); returns the names
    this kernel/libseccomp does not know (skipped)."""
    import pyseccomp

    f = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    unknown = []
    for name in DENIED:
        try:
            f.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        except (ValueError, RuntimeError, OSError):
            unknown.append(name)
    f.load()
    return unknown
