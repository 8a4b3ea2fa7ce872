"""Which isolation layers this machine gives a plugin host, and why one is missing.

Probed once per process (a few ms: one ``unshare`` run, one cgroup made and removed)
and shown by ``ksa plugin info`` and the web view. ``KSA_ISOLATION=strict`` refuses to
run an external plugin when any layer is missing; the default runs it with what there
is and logs once what is not.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
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


NS_FLAGS = ("--pid", "--fork", "--kill-child", "--mount", "--mount-proc", "--ipc", "--uts",
            "--net")


def unshare_prefix() -> list[str]:
    """The command prefix that starts the host in its namespaces ([] when refused)."""
    return _namespaces()[0]


@functools.cache
def _namespaces() -> tuple[list[str], str]:
    exe = shutil.which("unshare")
    if exe is None:
        return [], "no unshare(1) on PATH (util-linux)"
    cmd = [exe, *NS_FLAGS]
    if os.geteuid() != 0:
        cmd += ["--user", "--map-root-user"]
    try:
        p = subprocess.run([*cmd, "true"], capture_output=True, timeout=5, env={})
    except (OSError, subprocess.TimeoutExpired) as e:
        return [], f"unshare failed: {e}"
    if p.returncode != 0:
        err = p.stderr.decode(errors="replace").strip().splitlines()
        why = err[-1] if err else f"exit status {p.returncode}"
        if os.geteuid() != 0:
            return [], f"user namespaces refused by the kernel ({why})"
        return [], f"namespaces refused by the kernel ({why})"
    return cmd, ""


@functools.cache
def _cgroups() -> tuple[bool, str]:
    cg, why = CGroup.create(f"probe-{os.getpid()}", Limits())
    if cg is None:
        return False, why
    cg.remove()
    return True, f"cgroup v{cg.version} (memory, pids{', cpu' if 'cpu' in cg.dirs else ''})"


def probe() -> list[Layer]:
    ns_cmd, ns_why = _namespaces()
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
