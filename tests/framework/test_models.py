from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from kubestack_ai.plugins import (
    TLS,
    Auth,
    DiagnoseOptions,
    DiagnosticResult,
    Finding,
    MiddlewareTarget,
    PluginConfig,
    PluginInfo,
    Severity,
    Snapshot,
    Status,
)

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=dt.UTC)

SAMPLES = [
    PluginInfo(id="redis-diagnostics", name="Redis", version="1.2.3",
               capabilities=("diagnose", "execute"), actions=("bgsave",),
               dangerous_actions=("flushall",), author="x"),
    PluginConfig(enabled=False, options={"a": [1, 2], "b": {"c": None}},
                 thresholds={"memory_usage_pct": 75.5}, allowed_actions=("bgsave",)),
    MiddlewareTarget(type="redis", endpoints=("127.0.0.1:6379", "[::1]:6380"), mode="sentinel",
                     auth=Auth(username="u", password="env:REDIS_PASSWORD"),
                     tls=TLS(ca_file="/ca.pem", verify=False), options={"master_name": "m"},
                     thresholds={"x": 1.0}, allow_actions=("flushall",)),
    DiagnoseOptions(categories=("memory",),
                    history=(Snapshot(at=NOW, metrics={"evicted_keys": 3}),)),
    Finding(code="redis.memory.usage_high", category="memory", severity=Severity.CRITICAL,
            title="t", evidence={"used": 1, "pct": 99.5, "nested": {"k": [1, "a"]}},
            suggestion="s"),
    DiagnosticResult(plugin_id="p", plugin_version="1", target_name="t", status=Status.WARNING,
                     started_at=NOW, duration=0.123456789,
                     findings=[Finding(code="a.b.c", category="b", severity="warning", title="x",
                                       evidence={"v": 1}, suggestion="s")],
                     metrics={"m": 1.5, "l": [1, 2]}, errors={"memory": "boom"},
                     categories=("memory",), outcome="timed_out"),
]


@pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_model_round_trips_through_json_exactly(model):
    again = type(model).model_validate_json(model.model_dump_json())
    assert again == model
    assert again.model_dump_json() == model.model_dump_json()


def test_status_and_severity_order_and_exit_codes():
    assert max(Status.HEALTHY, Status.CRITICAL, Status.WARNING) is Status.CRITICAL
    assert Severity.INFO < Severity.WARNING < Severity.CRITICAL
    assert [s.exit_code for s in (Status.HEALTHY, Status.WARNING, Status.CRITICAL,
                                  Status.UNKNOWN)] == [0, 1, 2, 3]


def test_status_of_findings_and_errors():
    warn = Finding(code="a.b.c", category="b", severity="warning", title="x",
                   evidence={"v": 1}, suggestion="s")
    crit = Finding(code="a.b.d", category="b", severity="critical", title="x",
                   evidence={"v": 2}, suggestion="s")
    assert DiagnosticResult.status_of([], {}) is Status.HEALTHY
    assert DiagnosticResult.status_of([], {"b": "e"}) is Status.UNKNOWN
    assert DiagnosticResult.status_of([warn], {"b": "e"}) is Status.WARNING
    assert DiagnosticResult.status_of([warn, crit], {}) is Status.CRITICAL


def test_a_plain_password_is_refused():
    with pytest.raises(ValidationError, match="secret reference"):
        Auth(password="hunter2")


@pytest.mark.parametrize("endpoint", ["localhost", "h:0", "h:70000", "h:port", ""])
def test_bad_endpoints_are_refused(endpoint):
    with pytest.raises(ValidationError, match="endpoint"):
        MiddlewareTarget(type="redis", endpoints=(endpoint,))


def test_target_name_defaults_and_key():
    t = MiddlewareTarget(type="redis", endpoints=("h:1",))
    assert t.name == "h:1" and t.key == "redis:h:1"


def test_config_that_fails_validation_says_where():
    with pytest.raises(ValidationError) as e:
        PluginConfig.model_validate({"timeouts": {"init": -1}})
    assert e.value.errors()[0]["loc"] == ("timeouts", "init")
    with pytest.raises(ValidationError):
        PluginConfig.model_validate({"unknown_field": 1})


@pytest.mark.parametrize("model", SAMPLES, ids=lambda m: type(m).__name__)
def test_models_are_frozen(model):
    name = next(iter(type(model).model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(model, name, getattr(model, name))


def test_severity_and_status_are_ordered_ints_shown_by_name():
    assert Severity.INFO < Severity.WARNING < Severity.CRITICAL
    assert max([Severity.WARNING, Severity.CRITICAL, Severity.INFO]) is Severity.CRITICAL
    assert sorted(Status, reverse=True) == [Status.CRITICAL, Status.WARNING, Status.UNKNOWN,
                                            Status.HEALTHY]
    assert [str(s) for s in Severity] == ["info", "warning", "critical"]
    assert f"{Status.UNKNOWN}|{Severity.WARNING:>8}" == "unknown| warning"
    assert Status("critical") is Status.CRITICAL and Severity("info") is Severity.INFO


def test_severity_and_status_keep_their_names_in_json_and_python_dumps():
    r = SAMPLES[-1]
    assert isinstance(r, DiagnosticResult)
    data = r.model_dump(mode="json")
    assert data["status"] == "warning" and data["findings"][0]["severity"] == "warning"
    assert '"status":"warning"' in r.model_dump_json()
    assert r.model_dump()["status"] == "warning"
    assert DiagnosticResult.model_validate(r.model_dump()) == r


@pytest.mark.parametrize("bad", ["WARNING", "warn", 1, None])
def test_severity_accepts_only_its_names(bad):
    with pytest.raises(ValidationError, match="input should be 'info', 'warning', 'critical'"):
        Finding(code="a.b.c", category="b", severity=bad, title="x", evidence={"v": 1},
                suggestion="s")


@pytest.mark.parametrize("missing", [{"evidence": {}}, {"suggestion": ""},
                                     {"evidence": None}, {"suggestion": None}])
def test_a_finding_needs_evidence_and_a_suggestion(missing):
    fields = {"code": "a.b.c", "category": "b", "severity": "warning", "title": "x",
              "evidence": {"v": 1}, "suggestion": "Do this.", **missing}
    fields = {k: v for k, v in fields.items() if v is not None}
    with pytest.raises(ValidationError) as e:
        Finding(**fields)
    assert e.value.errors()[0]["loc"] == (next(iter(missing)),)
