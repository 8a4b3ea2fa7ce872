from __future__ import annotations

import subprocess
import sys

from kubestack_ai.plugins import (
    DiagnoseOptions,
    MiddlewareTarget,
    PluginCallError,
    PluginConfig,
    PluginManager,
    PluginState,
    Status,
    builtin_ids,
    load_builtin,
)
from tests.conftest import free_port

from .fakes import FakePlugin

TARGET = MiddlewareTarget(type="fake", endpoints=("127.0.0.1:1",))


def test_info_that_raises_is_refused_and_others_keep_working():
    m = PluginManager()
    try:
        m.register(FakePlugin("bad", fail={"info": "raise"}))
    except PluginCallError as e:
        assert str(e) == "plugin 'FakePlugin' info: RuntimeError: info exploded"
    else:
        raise AssertionError("info() raising must refuse the plugin")
    m.register(FakePlugin("good"))
    assert m.diagnose(TARGET).plugin_id == "good"


def test_info_that_hangs_is_refused_within_its_deadline():
    m = PluginManager()
    m.loader.info_timeout = 0.2
    p = FakePlugin("slow", fail={"info": "hang"})
    try:
        m.register(p)
    except PluginCallError as e:
        assert str(e) == "plugin 'FakePlugin' info: timed out after 0.2s"
    else:
        raise AssertionError("info() hanging must refuse the plugin")
    finally:
        p.release.set()


def test_diagnose_collects_findings_metrics_and_per_category_errors():
    m = PluginManager()
    m.register(FakePlugin(fail={"beta": "raise"}))
    r = m.diagnose(TARGET)
    assert r.status is Status.WARNING
    assert [f.code for f in r.findings] == ["fake.alpha.something"]
    assert r.metrics == {"alpha": 1}
    assert r.errors == {"beta": "RuntimeError: beta exploded"}
    assert r.categories == ("alpha", "beta")
    r = m.diagnose(TARGET, DiagnoseOptions(categories=("beta",)))
    assert r.status is Status.UNKNOWN and r.findings == []


def test_diagnose_that_hangs_returns_timed_out_result_in_time():
    import time

    m = PluginManager()
    p = FakePlugin(fail={"alpha": "hang"})
    m.register(p)
    t0 = time.perf_counter()
    r = m.diagnose(TARGET, timeout=0.3)
    p.release.set()
    assert time.perf_counter() - t0 < 1.0
    assert r.outcome == "timed_out" and r.status is Status.UNKNOWN
    assert r.errors["_run"] == "plugin 'fake' diagnose: timed out after 0.3s"


def test_cooperative_plugin_stops_at_deadline_and_keeps_what_it_found():
    m = PluginManager()
    m.register(FakePlugin(fail={"beta": "hang-cooperative"}))
    r = m.diagnose(TARGET, timeout=0.3)
    assert [f.code for f in r.findings] == ["fake.alpha.something"]


def test_connect_failure_is_a_critical_finding_not_a_crash():
    m = PluginManager()
    m.register(FakePlugin(fail={"connect": "raise"}))
    r = m.diagnose(TARGET)
    assert r.status is Status.CRITICAL
    assert r.findings[0].code == "fake.connection.unreachable"


def test_config_error_from_connect_is_unknown_not_an_outage():
    m = PluginManager()
    m.register(FakePlugin(fail={"connect": "config"}))
    r = m.diagnose(TARGET)
    assert r.status is Status.UNKNOWN and r.outcome == "failed"
    assert r.findings == []
    assert r.errors == {"_config": "connect: option 'x' is missing"}
    h = m.health_check(TARGET)
    assert h.status is Status.UNKNOWN and h.errors == {"_config": "connect: option 'x' is missing"}


def test_unknown_middleware_type_is_a_clear_error():
    m = PluginManager()
    m.register(FakePlugin())
    r = m.diagnose(MiddlewareTarget(type="nosuch", endpoints=("h:1",)))
    assert r.errors == {"_run": "no plugin for middleware type 'nosuch' (known types: fake)"}


def test_disabled_or_failed_plugin_is_not_used():
    m = PluginManager()
    m.register(FakePlugin(fail={"init": "raise"}))
    r = m.diagnose(TARGET)
    assert "init: RuntimeError: init exploded" in r.errors["_run"]
    assert m.registry.get_state("fake") is PluginState.FAILED


def test_tcp_plugin_end_to_end_on_a_real_server():
    # the machine's Redis is a TCP server; a free port has nobody listening
    m = PluginManager()
    ok = m.diagnose(MiddlewareTarget(type="tcp", endpoints=("127.0.0.1:6379",)))
    assert ok.status is Status.HEALTHY, ok
    assert ok.metrics["endpoints_down"] == 0
    down = m.diagnose(MiddlewareTarget(type="tcp", endpoints=(f"127.0.0.1:{free_port()}",)))
    assert down.status is Status.CRITICAL
    assert down.findings[0].code == "tcp.connection.unreachable"
    part = m.diagnose(MiddlewareTarget(type="tcp", endpoints=("127.0.0.1:6379",
                                                              f"127.0.0.1:{free_port()}")))
    assert [f.code for f in part.findings] == ["tcp.reachability.endpoint_down"]


def test_thresholds_per_target_override_plugin_config():
    m = PluginManager()
    m.load_builtin("tcp-diagnostics", PluginConfig(thresholds={"connect_ms_warning": 1000}))
    t = MiddlewareTarget(type="tcp", endpoints=("127.0.0.1:6379",),
                         thresholds={"connect_ms_warning": 0.0, "latency_samples": 2})
    r = m.diagnose(t, DiagnoseOptions(categories=("latency",)))
    assert [f.code for f in r.findings] == ["tcp.latency.connect_slow"]
    assert r.findings[0].evidence["threshold_ms"] == 0.0


def test_unknown_thresholds_in_plugin_config_or_target_are_a_clear_error():
    m = PluginManager()
    m.load_builtin("tcp-diagnostics", PluginConfig(thresholds={"conect_ms_warning": 1000}))
    r = m.diagnose(MiddlewareTarget(type="tcp", endpoints=("127.0.0.1:6379",),
                                    thresholds={"zz_typo": 1, "latency_samples": 2}))
    assert r.status is Status.UNKNOWN and r.outcome == "failed" and r.findings == []
    assert r.errors == {"_run": "plugin 'tcp-diagnostics': unknown thresholds conect_ms_warning, "
                                "zz_typo (known: connect_ms_warning, latency_samples)"}
    # a plugin that declares no names is not checked
    f = PluginManager()
    f.register(FakePlugin())
    assert f.diagnose(TARGET.model_copy(update={"thresholds": {"anything": 1}})).errors == {}


def test_builtin_plugins_declare_their_thresholds():
    from kubestack_ai.plugins.kafka import constants as kafka_c
    from kubestack_ai.plugins.mysql import constants as mysql_c
    from kubestack_ai.plugins.redis import constants as redis_c

    known = {i: load_builtin(i).known_thresholds() for i in builtin_ids()}
    assert known["redis-diagnostics"] == frozenset(redis_c.DEFAULTS)
    assert known["kafka-diagnostics"] == frozenset(kafka_c.DEFAULTS)
    assert known["mysql-diagnostics"] == frozenset(mysql_c.DEFAULTS)
    assert known["tcp-diagnostics"] == {"connect_ms_warning", "latency_samples"}


def test_listing_plugins_does_not_import_client_libraries():
    code = ("import sys; from kubestack_ai.plugins import PluginManager; m = PluginManager(); "
            "m.load_builtins(); [e.info for e in m.list_plugins()]; "
            "print(sorted(x for x in ('redis','kafka','pymysql','celery','sqlalchemy') "
            "if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_get_metrics_default_reads_nothing_and_runs_no_check():
    from kubestack_ai.plugins import Deadline

    p = FakePlugin()
    p.connect(Deadline(1), TARGET)
    assert p.get_metrics(Deadline(1)) == {}
    assert p.calls == ["connect"]  # no category ran: a full diagnosis is not "metrics"
