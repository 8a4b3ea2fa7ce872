"""What isolated runs cost their plugin hosts, per type, read from the stored results
in SQL for /metrics (issue 21), on every backend."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubestack_ai.storage import Store

from .storage_factories import T0, result


def test_host_resources_sum_cpu_and_take_the_largest_peak_of_latest_runs(store: Store) -> None:
    def rec(run: str, key: str, minutes: int, res: dict[str, Any] | None) -> None:
        r = result(at=T0 + dt.timedelta(minutes=minutes), target_name=key.split(":")[1])
        r = r.model_copy(update={"resources": res})
        assert store.record_run(run, key, "http-diagnostics", (), r, ttl=None)

    rec("a1", "http:a", 0, {"cpu_seconds": 9.0, "peak_rss_mb": 99.0})  # not the latest
    rec("a2", "http:a", 1, {"cpu_seconds": 0.25, "peak_rss_mb": 40.5})
    rec("b1", "http:b", 1, {"cpu_seconds": 0.5, "peak_rss_mb": 30.0, "isolation": "seccomp"})
    rec("c1", "redis:c", 1, None)  # in the worker: not counted
    assert store.host_resources() == [("http", 2, 0.75, 40.5)]


def test_run_resources_reads_each_runs_resources_only_for_the_runs_asked(store: Store) -> None:
    """The web view's run list: each isolated run's resources by run id, extracted in SQL;
    runs in the worker (``resources: null``) and runs not asked for are left out."""
    res = {"cpu_seconds": 0.012, "peak_rss_mb": 39.3, "isolation": "process, seccomp",
           "children_killed": 2, "refused_network": ["127.0.0.1:5672"], "wall_seconds": 0.02}
    for run, minutes, r in (("r1", 0, res), ("r2", 1, None), ("r3", 2, {**res, "cpu_seconds": 1.5})):
        body = result(at=T0 + dt.timedelta(minutes=minutes), target_name="a")
        assert store.record_run(run, "http:a", "http-diagnostics", (),
                                body.model_copy(update={"resources": r}), ttl=None)
    assert store.run_resources(["r1", "r2", "nope"]) == {"r1": res}
    assert store.run_resources(["r3"]) == {"r3": {**res, "cpu_seconds": 1.5}}
    assert store.run_resources([]) == {}


def test_plugin_targets_counts_the_fleets_targets_per_plugin_of_their_latest_run(
        store: Store) -> None:
    for run, key, plugin, minutes in (("p1", "http:a", "http-diagnostics", 0),
                                      ("p2", "http:a", "other-http", 1),  # a's latest
                                      ("p3", "http:b", "http-diagnostics", 0),
                                      ("p4", "redis:c", "redis-diagnostics", 0)):
        body = result(at=T0 + dt.timedelta(minutes=minutes), target_name=key.split(":")[1])
        assert store.record_run(run, key, plugin, (), body, ttl=None)
    assert store.plugin_targets() == {"http-diagnostics": 1, "other-http": 1,
                                      "redis-diagnostics": 1}
