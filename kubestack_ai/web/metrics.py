"""``/metrics``: the fleet's verdicts in Prometheus exposition, through prometheus_client.

Read from ``ksa_target_latest`` on every scrape (one lean query, one row per target):

    ksa_target_status{target,type}                    0 healthy, 1 warning, 2 critical, 3 unknown
    ksa_target_status_runs{target,type}               consecutive runs in that status
    ksa_target_stale{target,type}                     1 when the last run is older than
                                                      twice the target's interval
    ksa_finding_active{target,type,code,category,severity}   1 while a warning or critical
                                                      finding is in the latest run
    ksa_target_last_run_timestamp_seconds{target,type}
    ksa_run_duration_seconds{type}                    histogram of the latest runs' durations
    ksa_runs_total{type,outcome}                      runs recorded per outcome (pruning
                                                      the history does not lower it)
    ksa_spool_runs                                    runs kept in this machine's spool
                                                      ($KSA_HOME/spool), not yet stored
    ksa_spool_lost_runs_total                         runs the spool lost (full, no disk
                                                      space, unreadable), ever
    ksa_plugin_host_targets{type}                     targets whose latest run ran in a
                                                      plugin host (docs/isolation.md)
    ksa_plugin_host_cpu_seconds{type}                 CPU those runs cost their hosts, summed
    ksa_plugin_host_peak_memory_bytes{type}           the largest peak memory of those runs

``target`` is the target's name (with ``type`` it identifies the target, as the key
``type:name`` does); names and codes never hold a secret (targets carry references only).
Durations are a histogram per type, not a series per target: at 10,000 targets every
per-target series costs 10,000 samples a scrape.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    Sample,
)
from prometheus_client.registry import Collector

from kubestack_ai.plugins.models import Status, utcnow
from kubestack_ai.plugins.pyutil import gc_paused
from kubestack_ai.storage import OUTCOMES, Store
from kubestack_ai.storage.spool import Spool, default_dir

log = logging.getLogger(__name__)

STATUS_VALUE = {str(s): s.exit_code for s in Status}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class FleetCollector(Collector):
    """The fleet's metric families from one lean read of ``ksa_target_latest``.

    At 10,000 targets a build is ~42,000 samples, and prometheus_client's writer costs
    ~4 us a sample whatever we do; what is ours is kept below that: the samples are
    appended to the families directly (``add_metric`` builds a label dict per sample;
    here the four per-target families share one per target), timestamps come as floats
    (no datetime per row) and only targets with findings decode JSON."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        rows = self.store.metric_rows()
        now = utcnow().timestamp()
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
        runs = CounterMetricFamily("ksa_runs", "Runs recorded, by middleware type and outcome",
                                   labels=["type", "outcome"])
        s_status, s_runs_in, s_stale, s_last, s_active = (
            status.samples, runs_in.samples, stale.samples, last.samples, active.samples)
        n_status, n_runs_in, n_stale, n_last, n_active = (
            status.name, runs_in.name, stale.name, last.name, active.name)
        per_type: dict[str, list[int]] = {}
        durations: dict[str, list[int]] = {}
        sums: dict[str, float] = {}
        for key, mtype, st, st_runs, stale_ts, started_ts, duration, findings, *counts in rows:
            name = key.split(":", 1)[-1]
            lv = {"target": name, "type": mtype}  # read only: shared by the four families
            s_status.append(Sample(n_status, lv, STATUS_VALUE.get(st, 3)))
            s_runs_in.append(Sample(n_runs_in, lv, st_runs))
            s_stale.append(Sample(n_stale, lv, 1 if stale_ts is not None and stale_ts < now
                                  else 0))
            s_last.append(Sample(n_last, lv, started_ts))
            if findings != "[]":
                for f in json.loads(findings):
                    s_active.append(Sample(n_active, {
                        "target": name, "type": mtype, "code": f["code"],
                        "category": f["category"], "severity": f["severity"]}, 1))
            hist = durations.get(mtype)
            if hist is None:
                hist = durations[mtype] = [0] * (len(BUCKETS) + 1)
                per_type[mtype] = [0] * len(OUTCOMES)
                sums[mtype] = 0.0
            hist[bisect_left(BUCKETS, duration)] += 1
            sums[mtype] += duration
            acc = per_type[mtype]
            for i, n in enumerate(counts):
                acc[i] += n
        for mtype, ns in sorted(per_type.items()):
            for outcome, n in sorted(zip(OUTCOMES, ns, strict=True)):
                runs.add_metric([mtype, outcome], n)
        hist_family = HistogramMetricFamily(
            "ksa_run_duration_seconds", "Duration of each target's latest run, by type",
            labels=["type"])
        for mtype, counts_ in sorted(durations.items()):
            cumulative, total = [], 0
            for bound, n in zip([*map(str, BUCKETS), "+Inf"], counts_, strict=True):
                total += n
                cumulative.append((bound, total))
            hist_family.add_metric([mtype], cumulative, sums[mtype])
        yield from (status, runs_in, stale, active, last, hist_family, runs)


class SpoolCollector(Collector):
    """The spool of this machine (read from its directory: storage may be down)."""

    def __init__(self, directory: Path) -> None:
        self.spool = Spool(directory)

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("ksa_spool_runs", "Runs kept in the spool, not yet stored",
                                value=len(self.spool))
        yield CounterMetricFamily("ksa_spool_lost_runs", "Runs the spool lost (spool full, "
                                  "no disk space, unreadable record)", value=self.spool.dropped())


class HostCollector(Collector):
    """What isolated runs cost their plugin hosts, per type (one grouped query)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        tl = ["type"]
        n = GaugeMetricFamily("ksa_plugin_host_targets", "Targets whose latest run ran in a "
                              "plugin host", labels=tl)
        cpu = GaugeMetricFamily("ksa_plugin_host_cpu_seconds", "CPU seconds the latest "
                                "isolated runs cost their plugin hosts, summed", labels=tl)
        peak = GaugeMetricFamily("ksa_plugin_host_peak_memory_bytes", "Largest peak resident "
                                 "memory of a plugin host in the latest isolated runs",
                                 labels=tl)
        for mtype, targets, cpu_s, peak_mb in self.store.host_resources():
            n.add_metric([mtype], targets)
            cpu.add_metric([mtype], cpu_s)
            peak.add_metric([mtype], peak_mb * 2**20)
        yield from (n, cpu, peak)


def render(store: Store, spool_dir: Path | None = None) -> bytes:
    """One scrape: the text exposition format. Raises StorageError when storage is down.
    ``spool_dir``: the spool's (default ``$KSA_HOME/spool``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(store))
    registry.register(SpoolCollector(spool_dir or default_dir()))
    registry.register(HostCollector(store))
    with gc_paused():
        return generate_latest(registry)


class Snapshots:
    """``/metrics`` answered from a snapshot rebuilt in the background while scraped.

    Building the exposition of 10,000 targets takes ~0.2 s of CPU (most of it
    prometheus_client's writer), more on a loaded machine; a scrape should not wait for
    it. While someone scrapes (within ``idle`` seconds), a thread rebuilds the snapshot
    every ``refresh`` seconds; a scrape gets one at most twice that old, or builds it
    itself (and gets the storage error, a 503, when the database is down). A verdict
    changes at most once per target interval (30 s or more), so a 10-20 s old snapshot
    loses nothing Prometheus could see.
    """

    def __init__(self, store: Store, refresh: float = 10.0, idle: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.refresh = refresh
        self.idle = idle
        self._clock = clock
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._at = 0.0
        self._last_scrape = 0.0
        self._thread: threading.Thread | None = None

    def scrape(self) -> bytes:
        now = self._clock()
        self._last_scrape = now
        with self._lock:
            if self._body is None or now - self._at > 2 * self.refresh:
                self._build()
            body = self._body
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ksa-metrics",
                                                daemon=True)
                self._thread.start()
        assert body is not None
        return body

    def _build(self) -> None:
        self._body = render(self.store)
        self._at = self._clock()

    def _loop(self) -> None:
        while True:
            time.sleep(self.refresh)
            with self._lock:
                if self._clock() - self._last_scrape > self.idle:
                    self._thread = None  # nobody scrapes: stop until the next scrape
                    return
                try:
                    self._build()
                except Exception as e:  # storage down: the next scrape builds it and says so
                    log.warning("web: /metrics snapshot failed: %s", e)
                    self._body = None
