"""Which isolation layers this machine gives a plugin host, and why one is missing.

Probed once per process (a few ms: one ``unshare`` run, one cgroup made and removed)
and shown by ``ksa plugin info`` and the web view. ``KSA_ISOLATION=strict`` refuses to
run an external plugin when any layer is missing; the default runs it with what there
is and logs once what is not.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from ..logcontext import get_logger
from . import seccomp
from .cgroups import CGroup, Limits

log = get_logger(__name__)

STRICT_ENV = "KSA_ISOLATION"
LAYERS = ("process", "namespaces", "network", "seccomp", "cgroups", "rlimits")


@dataclass(frozen=True)
class Layer:
    name: str
    active: bool
    detail: str
    """What is in force, or why it is not."""


def namespaces_available() -> bool:
    return _namespaces()[0]


@functools.cache
def _namespaces() -> tuple[bool, str]:
    """Whether this process may enter new mount, IPC, UTS, network and PID namespaces
    (and a user namespace when not root): tried in a forked child, as the zygote does."""
    from .zygote import _enter_namespaces

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.close(r)
        try:
            _enter_namespaces()
            os.write(w, b"ok")
        except OSError as e:
            os.write(w, (e.strerror or str(e)).encode()[:200])
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read().decode(errors="replace")
    os.waitpid(pid, 0)
    if answer == "ok":
        return True, ""
    who = "user namespaces" if os.geteuid() != 0 else "namespaces"
    return False, f"{who} refused by the kernel ({answer or 'no answer'})"


@functools.cache
def _cgroups() -> tuple[bool, str]:
    cg, why = CGroup.create(f"probe-{os.getpid()}", Limits())
    if cg is None:
        return False, why
    cg.remove()
    return True, f"cgroup v{cg.version} (memory, pids{', cpu' if 'cpu' in cg.dirs else ''})"


def probe() -> list[Layer]:
    ns_cmd, ns_why = _namespaces()  # (available, why not)
    sc_why = seccomp.unavailable()
    cg_ok, cg_detail = _cgroups()
    root = os.geteuid() == 0
    return [
        Layer("process", True, "a plugin host process per plugin and target, kept warm"),
        Layer("namespaces", bool(ns_cmd),
              "pid, mount, ipc, uts, net" + ("" if root else ", user") + ": read-only "
              "filesystem, private /tmp, $KSA_HOME and secrets hidden" if ns_cmd else ns_why),
        Layer("network", bool(ns_cmd),
              "empty network namespace; the worker opens connections to the target's "
              "endpoints only" if ns_cmd else f"no network namespace: {ns_why}"),
        Layer("seccomp", sc_why is None,
              "libseccomp filter (pyseccomp): exec, ptrace, mount, unshare, bpf... -> EPERM"
              if sc_why is None else sc_why),
        Layer("cgroups", cg_ok, cg_detail if cg_ok else
              f"{cg_detail}: memory cap by RLIMIT_AS, process cap by RLIMIT_NPROC"),
        Layer("rlimits", True, "RLIMIT_AS, RLIMIT_CPU per run, RLIMIT_NPROC, no core files"
              + _user_note(root)),
    ]


def _user_note(root: bool) -> str:
    if not root:
        return ""
    from .confine import readable_by_others

    if readable_by_others(sys.prefix) and readable_by_others(sys.base_prefix):
        return "; the host runs as nobody"
    return ("; the host keeps uid 0 without capabilities (the Python install is not "
            "readable by nobody), so RLIMIT_NPROC does not bind it: processes capped by "
            "cgroup only")


def missing(layers: list[Layer] | None = None) -> list[Layer]:
    return [layer for layer in (layers or probe()) if not layer.active]


def strict(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(STRICT_ENV, "").strip().lower() == "strict"


@functools.cache
def log_missing_once() -> None:
    gaps = missing()
    if gaps:
        log.warning("plugin isolation on this machine lacks: %s",
                    "; ".join(f"{g.name}: {g.detail}" for g in gaps))
