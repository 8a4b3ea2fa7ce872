"""``/metrics``: the fleet's verdicts in Prometheus exposition, through prometheus_client.

Read from ``ksa_target_latest`` on every scrape (one query, one row per target):

    ksa_target_status{target,type}                    0 healthy, 1 warning, 2 critical, 3 unknown
    ksa_target_status_runs{target,type}               consecutive runs in that status
    ksa_target_stale{target,type}                     1 when the last run is older than
                                                      twice the target's interval
    ksa_finding_active{target,type,code,category,severity}   1 while a warning or critical
                                                      finding is in the latest run
    ksa_target_last_run_timestamp_seconds{target,type}
    ksa_run_duration_seconds{target,type}             the last run's duration
    ksa_runs_total{type,outcome}                      runs stored per outcome

``target`` is the target's name (with ``type`` it identifies the target, as the key
``type:name`` does); names and codes never hold a secret (targets carry references only).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kubestack_ai.plugins.models import Status, utcnow
from kubestack_ai.storage import OUTCOMES, Store

STATUS_VALUE = {s.value: s.exit_code for s in Status}


class FleetCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        targets = self.store.all_targets()
        now = utcnow()
        tl = ["target", "type"]
        status = GaugeMetricFamily("ksa_target_status", "Verdict of the target's latest run: "
                                   "0 healthy, 1 warning, 2 critical, 3 unknown", labels=tl)
        runs_in = GaugeMetricFamily("ksa_target_status_runs", "Consecutive runs of the target "
                                    "in its current status", labels=tl)
        stale = GaugeMetricFamily("ksa_target_stale", "1 when the target's last run is older "
                                  "than twice its interval", labels=tl)
        active = GaugeMetricFamily("ksa_finding_active", "1 while a warning or critical finding "
                                   "is in the target's latest run",
                                   labels=[*tl, "code", "category", "severity"])
        last = GaugeMetricFamily("ksa_target_last_run_timestamp_seconds",
                                 "Start of the target's latest run (Unix time)", labels=tl)
        duration = GaugeMetricFamily("ksa_run_duration_seconds",
                                     "Duration of the target's latest run", labels=tl)
        runs = CounterMetricFamily("ksa_runs", "Runs stored, by middleware type and outcome",
                                   labels=["type", "outcome"])
        per_type: dict[tuple[str, str], int] = {}
        for t in targets:
            lv = [t.name, t.type]
            status.add_metric(lv, STATUS_VALUE.get(t.status, 3))
            runs_in.add_metric(lv, t.status_runs)
            stale.add_metric(lv, 1 if t.is_stale(now) else 0)
            last.add_metric(lv, t.started_at.timestamp())
            duration.add_metric(lv, t.duration)
            for f in t.findings:
                active.add_metric([*lv, f["code"], f["category"], f["severity"]], 1)
            for outcome in OUTCOMES:
                k = (t.type, outcome)
                per_type[k] = per_type.get(k, 0) + t.runs.get(outcome, 0)
        for (mtype, outcome), n in sorted(per_type.items()):
            runs.add_metric([mtype, outcome], n)
        yield from (status, runs_in, stale, active, last, duration, runs)


def render(store: Store) -> bytes:
    """One scrape: the text exposition format. Raises StorageError when storage is down."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(store))
    return generate_latest(registry)
