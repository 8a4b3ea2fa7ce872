"""``/metrics`` says what the stored verdicts say, on every backend: the exposition of a
varied fleet (four statuses, findings, a stale target, runs of every outcome, two types, a
name that needs escaping) is the one a plain ``add_metric`` collector over the stored
records produces (the build before it was made fast), byte for byte."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status, utcnow
from kubestack_ai.storage import OUTCOMES, Store
from kubestack_ai.storage.spool import default_dir
from kubestack_ai.web.metrics import (
    BUCKETS,
    STATUS_VALUE,
    HostCollector,
    SpoolCollector,
    render,
)
from tests.storage.conftest import BACKENDS, _databases


@pytest.fixture(scope="module", params=BACKENDS)
def store(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    for dbs in _databases(request.param, tmp_path_factory):
        s = Store(dbs.new_url())
        s.migrate()
        yield s
        s.dispose()


def _finding(code: str, severity: Severity, category: str = "memory") -> Finding:
    return Finding(code=code, category=category, severity=severity, title=f"{code} seen",
                   evidence={"x": 1}, suggestion="do something")


def _run(store: Store, key: str, at: dt.datetime, status: Status, outcome: str = "completed",
         duration: float = 0.02, findings: tuple[Finding, ...] = ()) -> None:
    store.record_run(f"r-{key}-{at.timestamp()}", key, "p", (), DiagnosticResult(
        plugin_id="p", target_name=key.split(":", 1)[1], status=status, started_at=at,
        duration=duration, findings=list(findings), outcome=outcome),  # type: ignore[arg-type]
        ttl=None)


def _fill(store: Store) -> None:
    now = utcnow().replace(microsecond=654321)
    m = dt.timedelta(minutes=1)
    _run(store, "redis:cache-a", now - 2 * m, Status.HEALTHY)
    _run(store, "redis:cache-a", now - m, Status.HEALTHY, duration=0.003)
    _run(store, "redis:cache-b", now - m, Status.WARNING, duration=0.3, findings=(
        _finding("redis.memory.usage_high", Severity.WARNING),
        _finding("redis.info.note", Severity.INFO)))
    _run(store, "redis:cache-c", now - 3 * m, Status.UNKNOWN, outcome="failed")
    _run(store, "redis:cache-c", now - 2 * m, Status.CRITICAL, outcome="killed")
    _run(store, "redis:cache-c", now - m, Status.CRITICAL, duration=7.5, findings=(
        _finding("redis.persistence.rdb_failed", Severity.CRITICAL, "persistence"),
        _finding("redis.memory.usage_high", Severity.WARNING)))
    _run(store, "kafka:k1", now - m, Status.UNKNOWN, outcome="timed_out", duration=30.0)
    # last ran two hours ago, an interval of a minute before: stale
    _run(store, 'mysql:db "1" \\ west', now - 121 * m, Status.HEALTHY)
    _run(store, 'mysql:db "1" \\ west', now - 120 * m, Status.WARNING, duration=61.0,
         findings=(_finding("mysql.replication.lag", Severity.WARNING, "replication"),))


class _Plain:
    """The exposition as first written: every sample through ``add_metric``, from the
    stored records."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        tl = ["target", "type"]
        fams = {n: GaugeMetricFamily(n, h, labels=tl) for n, h in (
            ("ksa_target_status", "Verdict of the target's latest run: 0 healthy, 1 warning, "
                                  "2 critical, 3 unknown"),
            ("ksa_target_status_runs", "Consecutive runs of the target in its current status"),
            ("ksa_target_stale", "1 when the target's last run is older than twice its "
                                 "interval"))}
        active = GaugeMetricFamily("ksa_finding_active", "1 while a warning or critical finding "
                                   "is in the target's latest run",
                                   labels=[*tl, "code", "category", "severity"])
        last = GaugeMetricFamily("ksa_target_last_run_timestamp_seconds",
                                 "Start of the target's latest run (Unix time)", labels=tl)
        runs = CounterMetricFamily("ksa_runs", "Runs recorded, by middleware type and outcome",
                                   labels=["type", "outcome"])
        per: dict[tuple[str, str], int] = {}
        hists: dict[str, list[Any]] = {}
        for t in self.store.all_targets():
            lv = [t.name, t.type]
            fams["ksa_target_status"].add_metric(lv, STATUS_VALUE[t.status])
            fams["ksa_target_status_runs"].add_metric(lv, t.status_runs)
            fams["ksa_target_stale"].add_metric(lv, 1 if t.is_stale(now) else 0)
            last.add_metric(lv, t.started_at.timestamp())
            for f in t.findings:
                active.add_metric([*lv, f["code"], f["category"], f["severity"]], 1)
            h = hists.setdefault(t.type, [[0] * (len(BUCKETS) + 1), 0.0])
            h[0][sum(1 for b in BUCKETS if b < t.duration)] += 1
            h[1] += t.duration
            for o in OUTCOMES:
                per[(t.type, o)] = per.get((t.type, o), 0) + t.runs[o]
        for (mtype, o), n in sorted(per.items()):
            runs.add_metric([mtype, o], n)
        hist = HistogramMetricFamily("ksa_run_duration_seconds",
                                     "Duration of each target's latest run, by type",
                                     labels=["type"])
        for mtype, (counts, total) in sorted(hists.items()):
            acc = 0
            buckets = []
            for bound, n in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
                acc += n
                buckets.append((bound, acc))
            hist.add_metric([mtype], buckets, total)
        yield from (*fams.values(), active, last, hist, runs)


def test_exposition_is_the_stored_verdicts(store: Store) -> None:
    _fill(store)
    body = render(store).decode()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Plain(store))
    registry.register(SpoolCollector(default_dir()))  # the spool's two, after the fleet's
    registry.register(HostCollector(store))  # the plugin hosts' three (none isolated here)
    assert body == generate_latest(registry).decode()
    lines = set(body.splitlines())
    assert 'ksa_target_status{target="cache-c",type="redis"} 2.0' in lines
    assert 'ksa_target_status_runs{target="cache-c",type="redis"} 2.0' in lines
    assert ('ksa_finding_active{category="memory",code="redis.memory.usage_high",'
            'severity="warning",target="cache-b",type="redis"} 1.0') in lines
    assert not any("redis.info.note" in line for line in lines)  # info: not active
    assert 'ksa_target_stale{target="db \\"1\\" \\\\ west",type="mysql"} 1.0' in lines
    assert 'ksa_target_stale{target="cache-a",type="redis"} 0.0' in lines
    assert 'ksa_runs_total{outcome="killed",type="redis"} 1.0' in lines
    assert 'ksa_run_duration_seconds_count{type="redis"} 3.0' in lines
