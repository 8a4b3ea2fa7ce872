from __future__ import annotations

import threading

import pytest

from kubestack_ai.plugins import (
    DuplicatePluginError,
    PluginNotFoundError,
    PluginState,
    PluginType,
    Registry,
)

from .fakes import FakePlugin


def test_duplicate_id_is_refused_and_first_stays():
    reg = Registry()
    first = FakePlugin("dup", "t1")
    reg.register(first, source="builtin")
    with pytest.raises(DuplicatePluginError,
                       match=r"plugin id 'dup' is already registered \(version 1.0.0 from builtin\)"):
        reg.register(FakePlugin("dup", "t2"), source="/etc/plugins/dup.yaml")
    assert reg.get("dup") is first
    assert reg.middleware_types() == ["t1"]


def test_lookups_by_id_type_and_middleware():
    reg = Registry()
    a, b = FakePlugin("a", "redis"), FakePlugin("b", "kafka")
    reg.register(a)
    reg.register(b)
    assert reg.get("a") is a
    assert reg.get_middleware_plugin("kafka") is b
    assert [i.id for i in reg.list_by_type(PluginType.MIDDLEWARE)] == ["a", "b"]
    assert reg.list_by_type(PluginType.ACTION) == []
    assert reg.get_state("a") is PluginState.LOADED
    reg.unregister("a")
    with pytest.raises(PluginNotFoundError, match=r"unknown plugin 'a' \(registered: b\)"):
        reg.get("a")
    with pytest.raises(PluginNotFoundError,
                       match=r"no plugin for middleware type 'redis' \(known types: kafka\)"):
        reg.get_middleware_plugin("redis")


def test_registry_under_many_threads():
    reg = Registry()
    errors: list[BaseException] = []
    n_threads, per_thread = 16, 200
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                pid = f"p{t}-{i}"
                reg.register(FakePlugin(pid, f"type{t}"))
                assert reg.get(pid).info().id == pid
                reg.set_state(pid, PluginState.INITIALIZED)
                reg.get_middleware_plugin(f"type{t}")
                reg.list_by_type(PluginType.MIDDLEWARE)
                if i % 2:
                    reg.unregister(pid)
            # everyone races for one id: exactly one wins
            try:
                reg.register(FakePlugin("contested", "c"))
            except DuplicatePluginError:
                pass
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(reg) == n_threads * per_thread // 2 + 1
    assert all(reg.get_state(i) is PluginState.INITIALIZED for i in reg.ids() if i != "contested")
