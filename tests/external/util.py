"""Helpers for the external plugin tests: plugin folders written into temp dirs."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

from kubestack_ai.plugins import DiagnoseOptions, MiddlewareTarget, PluginManager

from ..conftest import free_port, require

__all__ = ["CODE", "EXAMPLES", "REPO", "free_port", "require", "serves", "target", "write_plugin"]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "plugins"

CODE = '''\
from __future__ import annotations

import threading
import time

from kubestack_ai.plugins import MiddlewarePlugin, PluginInfo, Run, category
{imports}

VERSION = "{version}"
{top}


class FxPlugin(MiddlewarePlugin):
    """Fixture plugin {pid}: diagnoses nothing real, reports which version ran."""

    gate: threading.Event | None = None
    entered: threading.Event | None = None

    def info(self) -> PluginInfo:
        return PluginInfo(id="{pid}", name="{pid}", version=VERSION, api_version="{api}")

    def middleware_type(self) -> str:
        return "{mtype}"

    def init(self, deadline, config) -> None:
        super().init(deadline, config)
{init}

    def connect(self, deadline, target) -> None:
        self.target = target

    @category("basic")
    def check_basic(self, run: Run) -> None:
        if self.entered is not None:
            self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        run.metric("version", VERSION)
        run.metric("options", dict(self.config.options))
'''


def write_plugin(base: Path, pid: str, version: str = "1.0.0", *, requires: tuple[str, ...] = (),
                 mtype: str | None = None, api: str = "1.0", init: str = "pass",
                 top: str = "", imports: str = "", manifest_extra: str = "",
                 entry: str = "plugin:FxPlugin", folder: str | None = None) -> Path:
    """A plugin folder ``base/<folder or pid>/`` with plugin.yaml and plugin.py."""
    d = base / (folder or pid)
    d.mkdir(parents=True, exist_ok=True)
    req = "".join(f"\n  - {r}" for r in requires) if requires else " []"
    (d / "plugin.yaml").write_text(
        f"id: {pid}\nname: Fixture {pid}\nversion: {version}\ntype: middleware\n"
        f"api_version: \"{api}\"\nentry: {entry}\nrequires:{req}\n{manifest_extra}")
    code = CODE.format(pid=pid, version=version, api=api, mtype=mtype or f"fx-{pid}",
                       init=textwrap.indent(init, " " * 8), top=top, imports=imports)
    path = d / "plugin.py"
    old = path.stat().st_mtime if path.exists() else None
    path.write_text(code)
    if old is not None:
        # the bytecode cache is keyed by mtime (seconds) and size: a redeploy within the
        # same second must still look new, as a real one minutes later does
        new = max(time.time(), old) + 2
        os.utime(path, (new, new))
    return d


def target(pid: str) -> MiddlewareTarget:
    return MiddlewareTarget(type=f"fx-{pid}", endpoints=("127.0.0.1:1",))


def serves(m: PluginManager, pid: str) -> str:
    """Diagnose with ``pid``; return the version that answered (asserting it completed)."""
    r = m.diagnose(target(pid), DiagnoseOptions(), timeout=5)
    assert r.outcome == "completed" and not r.errors, (r.errors, r.outcome)
    return str(r.metrics["version"])



