"""Results and findings for the storage tests (a module, not conftest, so tests import it)."""

from __future__ import annotations

import datetime as dt

from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status

T0 = dt.datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=dt.UTC)


def result(*, at: dt.datetime = T0, status: Status = Status.HEALTHY, outcome: str = "completed",
           metrics: dict[str, object] | None = None, categories: tuple[str, ...] = (),
           target_name: str = "cache-1", findings: list[Finding] | None = None) -> DiagnosticResult:
    return DiagnosticResult(plugin_id="redis-diagnostics", plugin_version="1.2.0",
                            target_name=target_name, status=status, started_at=at, duration=0.25,
                            findings=findings or [], metrics=metrics or {}, categories=categories,
                            outcome=outcome)  # type: ignore[arg-type]


def finding() -> Finding:
    return Finding(code="redis.memory.usage_high", category="memory",
                   severity=Severity.WARNING, title="Memory use is 93% of maxmemory",
                   evidence={"used_memory": 993_000_000, "maxmemory": 1_068_000_000,
                             "ratio": 0.9297, "note": "naïve ✓ unicode"},
                   suggestion="Raise maxmemory or set an eviction policy.")
