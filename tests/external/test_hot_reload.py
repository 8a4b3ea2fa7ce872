"""Hot reload and rollback: new code beside the old, swapped in only when Running."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kubestack_ai.plugins import PluginManager, PluginState, ReloadError

from .util import serves, target, write_plugin


@pytest.fixture
def loaded(manager: PluginManager, plugin_dir: Path) -> PluginManager:
    write_plugin(plugin_dir, "hot", "1.0.0")
    write_plugin(plugin_dir, "bystander")
    assert manager.load_external([plugin_dir], entry_points=False) == []
    assert serves(manager, "hot") == "1.0.0"
    return manager


def test_reload_loads_fresh_code_and_stops_the_old(loaded: PluginManager,
                                                   plugin_dir: Path) -> None:
    reports = []
    loaded.reload_hooks.append(reports.append)
    old = loaded.registry.entry("hot")
    write_plugin(plugin_dir, "hot", "1.1.0")
    report = loaded.hot_reload("hot")
    assert (report.kind, report.old_version, report.new_version) == ("reload", "1.0.0", "1.1.0")
    assert set(report.seconds) == {"load", "init", "start", "swap"}
    assert reports == [report]
    assert serves(loaded, "hot") == "1.1.0"
    new = loaded.registry.entry("hot")
    assert new.state is PluginState.RUNNING and new.info.version == "1.1.0"
    assert type(new.plugin).__module__ != type(old.plugin).__module__  # fresh modules
    assert report.wait_retired(5) and old.state is PluginState.STOPPED
    assert serves(loaded, "bystander") == "1.0.0"


def test_failing_new_version_rolls_back_automatically(loaded: PluginManager,
                                                      plugin_dir: Path) -> None:
    old = loaded.registry.entry("hot")
    write_plugin(plugin_dir, "hot", "1.2.0", init="raise ValueError('bad new config')")
    with pytest.raises(ReloadError) as ei:
        loaded.hot_reload("hot")
    assert str(ei.value) == (
        f"plugin 'hot' ({plugin_dir}/hot/plugin.yaml): reload to 1.2.0 (init) failed: plugin "
        "'hot' init: ValueError: bad new config; version 1.0.0 keeps serving")
    assert loaded.registry.entry("hot") is old and old.state is PluginState.RUNNING
    assert serves(loaded, "hot") == "1.0.0"
    # a broken import is refused the same way
    write_plugin(plugin_dir, "hot", "1.3.0", top="raise ImportError('half-deployed')")
    with pytest.raises(ReloadError, match=r"reload \(load\) failed: .*half-deployed.*version "
                                          r"1.0.0 keeps serving"):
        loaded.hot_reload("hot")
    assert serves(loaded, "hot") == "1.0.0"


def test_explicit_rollback_to_previous_version(loaded: PluginManager, plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "hot", "2.0.0")
    loaded.hot_reload("hot").wait_retired(5)
    assert serves(loaded, "hot") == "2.0.0"
    report = loaded.rollback("hot")
    assert (report.kind, report.old_version, report.new_version) == ("rollback", "2.0.0",
                                                                     "1.0.0")
    assert serves(loaded, "hot") == "1.0.0"
    with pytest.raises(ReloadError, match="no previous version to roll back to; version "
                                          "1.0.0 keeps serving"):
        loaded.rollback("hot")


def test_in_flight_diagnosis_finishes_on_its_version(loaded: PluginManager,
                                                     plugin_dir: Path) -> None:
    old = loaded.registry.entry("hot")
    old.plugin.gate = gate = threading.Event()  # type: ignore[attr-defined]
    old.plugin.entered = entered = threading.Event()  # type: ignore[attr-defined]
    results = []
    th = threading.Thread(target=lambda: results.append(loaded.diagnose(target("hot"),
                                                                        timeout=10)))
    th.start()
    assert entered.wait(5)  # the diagnosis runs on 1.0.0 and holds its lock
    write_plugin(plugin_dir, "hot", "3.0.0")
    report = loaded.hot_reload("hot")  # must neither wait for it nor break it
    assert serves(loaded, "hot") == "3.0.0"  # new calls already go to the new version
    assert not report.retired.is_set() and old.state is PluginState.RUNNING
    gate.set()
    th.join(5)
    assert results[0].plugin_version == "1.0.0" and results[0].metrics["version"] == "1.0.0"
    assert results[0].outcome == "completed"
    assert report.wait_retired(5) and old.state is PluginState.STOPPED


def test_reload_from_another_folder_and_identity_checks(loaded: PluginManager,
                                                        tmp_path: Path) -> None:
    v2 = write_plugin(tmp_path / "release-2", "hot", "2.5.0")
    assert loaded.hot_reload("hot", v2).new_version == "2.5.0"
    assert loaded.registry.entry("hot").extra["location"] == str(v2 / "plugin.yaml")
    other = write_plugin(tmp_path / "wrong", "bystander", "7.0.0")
    with pytest.raises(ReloadError, match="the new code is plugin 'bystander', not 'hot'"):
        loaded.hot_reload("hot", other)
    assert serves(loaded, "hot") == "2.5.0"


def test_reload_that_would_break_a_dependent_is_refused(manager: PluginManager,
                                                        plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "core", "1.0.0")
    write_plugin(plugin_dir, "addon", requires=("core < 2",))
    assert manager.load_external([plugin_dir], entry_points=False) == []
    write_plugin(plugin_dir, "core", "2.0.0")
    with pytest.raises(ReloadError, match="version 2.0.0 would break addon, which requires "
                                          "core < 2"):
        manager.hot_reload("core")
    assert serves(manager, "core") == "1.0.0"


def test_builtin_reload_makes_a_new_instance(manager: PluginManager) -> None:
    old = manager.registry.entry("tcp-diagnostics")
    report = manager.hot_reload("tcp-diagnostics")
    new = manager.registry.entry("tcp-diagnostics")
    assert new.plugin is not old.plugin and new.state is PluginState.RUNNING
    assert report.new_version == "1.0.0" and report.wait_retired(5)


def test_concurrent_reloads_serialize(loaded: PluginManager, plugin_dir: Path) -> None:
    write_plugin(plugin_dir, "hot", "4.0.0")
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(loaded.hot_reload("hot")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(reports) == 4 and all(r.wait_retired(5) for r in reports)
    # each reload replaced the previous one's version: exactly one entry is left running
    assert [r.old_version for r in reports] == ["1.0.0", "4.0.0", "4.0.0", "4.0.0"]
    assert serves(loaded, "hot") == "4.0.0"
