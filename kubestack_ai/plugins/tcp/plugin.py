from __future__ import annotations

import socket
import statistics
import time
from typing import Any

from ..base import MiddlewarePlugin, Run, category
from ..deadline import Deadline
from ..errors import ConnectError
from ..models import MiddlewareTarget, PluginInfo, Severity, split_endpoint

INFO = PluginInfo(
    id="tcp-diagnostics", name="TCP endpoint diagnostics", version="1.0.0",
    description="Reachability and connect latency of any TCP service.",
    capabilities=("health-check", "diagnose"), author="KubeStack AI",
)


DEFAULTS: dict[str, float] = {"latency_samples": 5, "connect_ms_warning": 100.0}


def _connect_time(host: str, port: int, timeout: float) -> float:
    t0 = time.perf_counter()
    with socket.create_connection((host, port), timeout=timeout):
        return time.perf_counter() - t0


class TcpPlugin(MiddlewarePlugin):
    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "tcp"

    @classmethod
    def known_thresholds(cls) -> frozenset[str]:
        return frozenset(DEFAULTS)

    @classmethod
    def target_options(cls) -> dict[str, Any]:
        return {}  # none: any option is a mistake

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        # connect succeeds when at least one endpoint answers; the others are findings
        errors = []
        for ep in target.endpoints:
            host, port = split_endpoint(ep)
            try:
                _connect_time(host, port, deadline.remaining(cap=5.0) or 0.001)
                self.target = target
                return
            except OSError as e:
                errors.append(f"{ep}: {e.strerror or e}")
        raise ConnectError("; ".join(errors))

    @category("reachability")
    def check_reachability(self, run: Run) -> None:
        down = []
        for ep in run.target.endpoints:
            host, port = split_endpoint(ep)
            try:
                _connect_time(host, port, run.deadline.remaining(cap=5.0) or 0.001)
            except OSError as e:
                down.append({"endpoint": ep, "error": e.strerror or str(e)})
        run.metric("endpoints_down", len(down))
        if down:
            run.finding("tcp.reachability.endpoint_down", Severity.CRITICAL,
                        f"{len(down)} of {len(run.target.endpoints)} endpoints refuse connections",
                        evidence={"down": down},
                        suggestion="Check that the service runs on every listed endpoint.")

    @category("latency")
    def check_latency(self, run: Run) -> None:
        samples = int(run.threshold("latency_samples", DEFAULTS["latency_samples"]))
        limit_ms = run.threshold("connect_ms_warning", DEFAULTS["connect_ms_warning"])
        host, port = split_endpoint(run.target.endpoints[0])
        times = []
        for _ in range(samples):
            run.deadline.check("latency")
            times.append(_connect_time(host, port, run.deadline.remaining(cap=5.0) or 0.001))
        median_ms = statistics.median(times) * 1000
        run.metric("connect_ms_median", round(median_ms, 3))
        if median_ms > limit_ms:
            run.finding("tcp.latency.connect_slow", Severity.WARNING,
                        f"Median connect time {median_ms:.1f} ms is above {limit_ms:g} ms",
                        evidence={"median_ms": round(median_ms, 3), "threshold_ms": limit_ms,
                                  "samples": samples},
                        suggestion="Look for network congestion or a saturated accept queue.")
