"""A task result's one-line ``summary`` (first in the result, so Flower shows it)."""

from __future__ import annotations

from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status, utcnow
from kubestack_ai.workers.runtime import envelope, summary
from kubestack_ai.workers.tasks import RESULT_REPR


def _f(code: str, sev: Severity) -> Finding:
    return Finding(code=code, category="connection", severity=sev, title=code,
                   evidence={"n": 1}, suggestion="fix it")


def _r(findings: list[Finding], status: Status, outcome: str = "completed",
       errors: dict[str, str] | None = None) -> DiagnosticResult:
    return DiagnosticResult(plugin_id="mysql-diagnostics", target_name="db", status=status,
                            started_at=utcnow(), duration=0.1, findings=findings,
                            errors=errors or {}, outcome=outcome)  # type: ignore[arg-type]


def test_summary_names_the_worst_finding_and_how_many_more() -> None:
    r = _r([_f("mysql.connection.aborted", Severity.WARNING),
            _f("mysql.connection.auth_failed", Severity.CRITICAL),
            _f("mysql.performance.slow_log_off", Severity.INFO),
            _f("mysql.performance.tmp_disk", Severity.WARNING)], Status.CRITICAL)
    assert summary(r) == "critical: mysql.connection.auth_failed; 2 more"
    assert summary(_r([_f("mysql.performance.slow_log_off", Severity.INFO)], Status.HEALTHY)) \
        == "healthy: 1 info findings"
    assert summary(_r([], Status.HEALTHY)) == "healthy: no findings"
    assert summary(_r([], Status.UNKNOWN, "timed_out", {"innodb": "deadline"})) == \
        "timed_out, unknown: could not read innodb"
    assert summary(None, "invalid target: endpoints: field required") == \
        "error: invalid target: endpoints: field required"


def test_summary_is_first_in_the_task_result_and_the_repr_is_long_enough() -> None:
    r = _r([_f("mysql.connection.auth_failed", Severity.CRITICAL)], Status.CRITICAL)
    env = envelope("t1", r, target_key="mysql:db", plugin_id="mysql-diagnostics")
    assert next(iter(env)) == "summary"
    assert repr(env).startswith("{'summary': 'critical: mysql.connection.auth_failed'")
    assert RESULT_REPR > 1024
