from __future__ import annotations

import itertools

import pytest

from kubestack_ai.plugins import (
    TRANSITIONS,
    IllegalTransitionError,
    PluginCallError,
    PluginConfig,
    PluginManager,
    PluginState,
    PluginTimeoutError,
    Registry,
)

from .fakes import FakePlugin

S = PluginState
LEGAL = {
    (S.UNLOADED, S.LOADED), (S.LOADED, S.INITIALIZED), (S.INITIALIZED, S.RUNNING),
    (S.RUNNING, S.STOPPED), (S.INITIALIZED, S.LOADED),
    *((s, S.FAILED) for s in S if s is not S.FAILED),
}


def test_transition_table_is_the_seeds_exactly():
    assert set(TRANSITIONS) == LEGAL


def _registry_at(state: PluginState) -> Registry:
    reg = Registry()
    reg.register(FakePlugin())
    reg._entries["fake"].state = state  # place the plugin in the state under test
    return reg


@pytest.mark.parametrize("current,target", sorted(itertools.product(S, S)), ids=str)
def test_every_transition_legal_or_refused(current, target):
    reg = _registry_at(current)
    if (current, target) in LEGAL:
        assert reg.set_state("fake", target) is current
        assert reg.get_state("fake") is target
    else:
        with pytest.raises(IllegalTransitionError) as e:
            reg.set_state("fake", target)
        assert str(e.value) == f"plugin 'fake': illegal transition {current.value} -> {target.value}"
        assert reg.get_state("fake") is current


def test_full_lifecycle_with_hooks_seeing_every_transition():
    m = PluginManager()
    seen = []
    m.registry.add_hook(lambda pid, old, new, err: seen.append((pid, old, new)))
    m.register(FakePlugin())
    m.init("fake")
    m.reload("fake", PluginConfig(options={"x": 1}))
    assert m.registry.get("fake").config.options == {"x": 1}
    m.start("fake")
    m.stop("fake")
    assert [(o.value, n.value) for _, o, n in seen] == [
        ("unloaded", "loaded"), ("loaded", "initialized"), ("initialized", "loaded"),
        ("loaded", "initialized"), ("initialized", "running"), ("running", "stopped")]


def test_start_from_loaded_is_illegal_and_names_both_states():
    m = PluginManager()
    m.register(FakePlugin())
    with pytest.raises(IllegalTransitionError, match="'fake': illegal transition loaded -> running"):
        m.start("fake")


def test_reload_of_running_plugin_is_illegal():
    m = PluginManager()
    m.register(FakePlugin())
    m.init("fake")
    m.start("fake")
    with pytest.raises(IllegalTransitionError, match="running -> loaded"):
        m.reload("fake")


def test_init_that_raises_moves_to_failed_with_structured_error():
    m = PluginManager()
    m.register(FakePlugin(fail={"init": "raise"}))
    with pytest.raises(PluginCallError) as e:
        m.init("fake")
    assert str(e.value) == "plugin 'fake' init: RuntimeError: init exploded"
    assert m.registry.get_state("fake") is S.FAILED
    assert m.registry.entry("fake").last_error == str(e.value)


def test_init_that_hangs_times_out_and_fails():
    m = PluginManager()
    p = FakePlugin(fail={"init": "hang"})
    m.register(p, PluginConfig(timeouts={"init": 0.2}))
    with pytest.raises(PluginTimeoutError, match="plugin 'fake' init: timed out after 0.2s"):
        m.init("fake", PluginConfig(timeouts={"init": 0.2}))
    p.release.set()
    assert m.registry.get_state("fake") is S.FAILED


def test_config_rejected_by_plugin_fails_init_with_its_message():
    m = PluginManager()
    m.register(FakePlugin())
    with pytest.raises(Exception, match="option 'bad' is not allowed"):
        m.init("fake", PluginConfig(options={"bad": 1}))
    assert m.registry.get_state("fake") is S.FAILED


def test_start_all_and_stop_all_report_every_failure_and_go_on():
    m = PluginManager()
    m.register(FakePlugin("a", "ta"))
    m.register(FakePlugin("b", "tb", fail={"start": "raise"}))
    m.register(FakePlugin("c", "tc", fail={"init": "raise"}))
    m.register(FakePlugin("d", "td", fail={"stop": "raise"}))
    failures = m.start_all()
    assert sorted(f.plugin_id for f in failures) == ["b", "c"]
    assert {i: m.registry.get_state(i) for i in "abcd"} == {
        "a": S.RUNNING, "b": S.FAILED, "c": S.FAILED, "d": S.RUNNING}
    failures = m.stop_all()
    assert [f.plugin_id for f in failures] == ["d"]
    assert "stop: RuntimeError: stop exploded" in str(failures[0])
    assert m.registry.get_state("a") is S.STOPPED


def test_health_checks_move_a_plugin_that_keeps_failing_to_failed():
    m = PluginManager()
    bad = FakePlugin("bad", "tb", fail={"health_check": "raise"})
    m.register(FakePlugin("good", "tg"))
    m.register(bad)
    m.start_all()
    for _ in range(2):
        report = m.lifecycle.check_health(max_failures=3)
        assert report["good"] is None and report["bad"] is not None
        assert m.registry.get_state("bad") is S.RUNNING
    m.lifecycle.check_health(max_failures=3)
    assert m.registry.get_state("bad") is S.FAILED
    assert m.registry.get_state("good") is S.RUNNING
    assert "health_check: RuntimeError" in m.registry.entry("bad").last_error


def test_scheduled_health_checks_run_in_background():
    import time

    m = PluginManager()
    m.register(FakePlugin("bad", "tb", fail={"health_check": "raise"}))
    m.start_all()
    m.lifecycle.schedule_health_checks(0.02, max_failures=2)
    try:
        t0 = time.monotonic()
        while m.registry.get_state("bad") is not S.FAILED and time.monotonic() - t0 < 5:
            time.sleep(0.01)
    finally:
        m.lifecycle.stop_health_checks()
    assert m.registry.get_state("bad") is S.FAILED
