"""Hot reload and rollback go through the lifecycle like any load: the registry's
transition hooks fire for the new version's init/start (or failure) and the old one's
stop; the loader's load time-out bounds a rollback's instantiation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.plugins import PluginManager, PluginState, ReloadError

from .util import serves, write_plugin

S = PluginState

SLOW_FACTORY = '''
import os


def make():
    time.sleep(float(os.environ.get("FX_SLOW", "0")))
    return FxPlugin()
'''


def record(m: PluginManager, pid: str) -> list[tuple[Any, ...]]:
    seen: list[tuple[Any, ...]] = []
    m.registry.add_hook(lambda p, old, new, err: seen.append((old, new)) if p == pid else None)
    return seen


def test_reload_fires_transition_hooks(manager: PluginManager, plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "hk1", "1.0.0")
    assert manager.load_external([plugin_dir], entry_points=False) == []
    assert serves(manager, "hk1") == "1.0.0"  # started on first use
    seen = record(manager, "hk1")
    write_plugin(plugin_dir, "hk1", "1.1.0")
    report = manager.hot_reload("hk1")
    assert report.wait_retired(5)
    assert seen == [(S.LOADED, S.INITIALIZED), (S.INITIALIZED, S.RUNNING),
                    (S.RUNNING, S.STOPPED)]
    seen.clear()
    write_plugin(plugin_dir, "hk1", "1.2.0", init="raise RuntimeError('boom')")
    with pytest.raises(ReloadError):
        manager.hot_reload("hk1")
    assert seen == [(S.LOADED, S.FAILED)]
    assert serves(manager, "hk1") == "1.1.0"


def test_rollback_instantiation_bounded_by_the_load_timeout(
        manager: PluginManager, plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plugin(plugin_dir, "slowmake", "1.0.0", top=SLOW_FACTORY, entry="plugin:make")
    assert manager.load_external([plugin_dir], entry_points=False) == []
    write_plugin(plugin_dir, "slowmake", "1.1.0", top=SLOW_FACTORY, entry="plugin:make")
    manager.hot_reload("slowmake").wait_retired(5)
    manager.loader.load_timeout = 0.3
    monkeypatch.setenv("FX_SLOW", "1.0")
    with pytest.raises(ReloadError, match="0.3"):
        manager.rollback("slowmake")
    assert serves(manager, "slowmake") == "1.1.0"
