"""A cgroup per plugin host: memory, CPU share and process count, and what the host used.

cgroup v2 where the process's own cgroup lets us make a child with the memory, pids and
cpu controllers; else the v1 controllers mounted under /sys/fs/cgroup/<controller>;
else nothing (the host falls back to rlimits, and says so). Made by the worker before
the host runs plugin code, removed when the host is replaced.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "ksa-plugin-host"


@dataclass(frozen=True)
class Limits:
    memory_mb: int | None = None
    cpu_pct: int | None = None
    pids_max: int | None = None


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(value)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _v2_base() -> Path | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                base = ROOT / line[3:].lstrip("/")
                if (ROOT / "cgroup.controllers").exists():
                    return base
    except OSError:
        pass
    return None


@dataclass
class CGroup:
    """One host's cgroup(s): ``dirs`` by controller (v1) or one dir for all (v2)."""

    version: int
    dirs: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def create(cls, name: str, limits: Limits) -> tuple[CGroup | None, str]:
        """A cgroup with ``limits``, or (None, why not)."""
        why2 = "cgroup v2 not mounted"
        base = _v2_base()
        if base is not None:
            d = base / f"{PREFIX}-{name}"
            try:
                d.mkdir(exist_ok=True)
                if all((d / f).exists() for f in ("memory.max", "pids.max", "cpu.max")):
                    cg = cls(2, {"memory": d, "pids": d, "cpu": d})
                    cg._apply(limits)
                    return cg, ""
                with contextlib.suppress(OSError):
                    d.rmdir()
                why2 = "cgroup v2 controllers (memory, pids, cpu) not delegated here"
            except OSError as e:
                why2 = f"cgroup v2 not writable here ({e.strerror})"
        dirs: dict[str, Path] = {}
        try:
            for ctl in ("memory", "pids", "cpu", "cpuacct"):
                top = ROOT / ctl
                if not (top / "cgroup.procs").exists():
                    continue
                d = top / PREFIX / name
                d.mkdir(parents=True, exist_ok=True)
                dirs[ctl] = d
        except OSError as e:
            cls(1, dirs).remove()
            return None, f"{why2}; cgroup v1 not writable here ({e.strerror})"
        if not {"memory", "pids"} <= dirs.keys():
            cls(1, dirs).remove()
            return None, f"{why2}; no cgroup v1 memory and pids controllers"
        cg = cls(1, dirs)
        try:
            cg._apply(limits)
        except OSError as e:
            cg.remove()
            return None, f"{why2}; cgroup v1 limits refused ({e.strerror})"
        return cg, ""

    def _apply(self, limits: Limits) -> None:
        mem, pids, cpu = self.dirs.get("memory"), self.dirs.get("pids"), self.dirs.get("cpu")
        if self.version == 2:
            assert mem and pids and cpu
            if limits.memory_mb:
                _write(mem / "memory.max", str(limits.memory_mb * 1024 * 1024))
                with contextlib.suppress(OSError):
                    _write(mem / "memory.swap.max", "0")
            if limits.pids_max:
                _write(pids / "pids.max", str(limits.pids_max))
            if limits.cpu_pct:
                _write(cpu / "cpu.max", f"{limits.cpu_pct * 1000} 100000")
            return
        if mem and limits.memory_mb:
            _write(mem / "memory.limit_in_bytes", str(limits.memory_mb * 1024 * 1024))
        if pids and limits.pids_max:
            _write(pids / "pids.max", str(limits.pids_max))
        if cpu and limits.cpu_pct:
            _write(cpu / "cpu.cfs_period_us", "100000")
            _write(cpu / "cpu.cfs_quota_us", str(limits.cpu_pct * 1000))

    def add(self, pid: int) -> None:
        for d in set(self.dirs.values()):
            _write(d / "cgroup.procs", str(pid))

    def reset_peak(self) -> None:
        mem = self.dirs.get("memory")
        if mem is not None and self.version == 1:
            with contextlib.suppress(OSError):
                _write(mem / "memory.max_usage_in_bytes", "0")

    def peak_bytes(self) -> int | None:
        mem = self.dirs.get("memory")
        if mem is None:
            return None
        return _read_int(mem / ("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"))

    def oom_kills(self) -> int:
        """How many processes the memory limit's OOM killer ended (``oom_kill``)."""
        mem = self.dirs.get("memory")
        if mem is None:
            return 0
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (mem / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def procs(self) -> set[int]:
        out: set[int] = set()
        for d in set(self.dirs.values()):
            try:
                out |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                pass
        return out

    def kill_all(self) -> None:
        """SIGKILL every process in the cgroup (a child the plugin left behind too)."""
        for _ in range(20):
            pids = self.procs()
            if not pids:
                return
            for p in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, signal.SIGKILL)

    def remove(self, wait: float = 2.0) -> None:
        """rmdir each directory once its processes are gone (a killed process leaves its
        cgroup a moment after the kill)."""
        import time

        deadline = time.monotonic() + wait
        left = set(self.dirs.values())
        while left:
            for d in list(left):
                try:
                    d.rmdir()
                    left.discard(d)
                except FileNotFoundError:
                    left.discard(d)
                except OSError:
                    pass
            if not left or time.monotonic() > deadline:
                return
            self.kill_all()
            time.sleep(0.005)


def sweep() -> int:
    """Remove the (empty) cgroups of hosts whose worker died without removing them
    (named ``<worker pid>-...``); returns how many."""
    removed = 0
    bases = [ROOT / ctl / PREFIX for ctl in ("memory", "pids", "cpu", "cpuacct")]
    v2 = _v2_base()
    if v2 is not None:
        bases.append(v2)
    for base in bases:
        try:
            children = list(base.iterdir())
        except OSError:
            continue
        for d in children:
            name = d.name.removeprefix(f"{PREFIX}-")
            pid = name.split("-", 1)[0]
            if not d.is_dir() or not pid.isdigit() or Path(f"/proc/{pid}").exists():
                continue
            with contextlib.suppress(OSError):
                d.rmdir()
                removed += 1
    return removed
