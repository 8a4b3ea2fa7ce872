"""NodeView: a check's window on one node, and the merge of findings across nodes.

Checks are written once, per node. Standalone: findings and metrics go straight into
the run. Cluster and Sentinel: each finding names its node in the evidence, metrics go
under ``metrics["nodes"][addr]``, and a finding raised by several nodes becomes one
finding listing them (worst severity, per-node evidence).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from ..base import Run
from ..models import Severity
from ..rates import Rate, Reading, counter_rate, readings
from .constants import COUNTER_METRICS, DEFAULTS, RATE_COUNTERS, SUMMED_METRICS
from .fetch import NodeData
from .infoparse import dict_fields

T = TypeVar("T")


def counters(info: dict[str, Any]) -> dict[str, Any]:
    """The counters of an INFO reply that history and rates compare, flat: the named
    COUNTER_METRICS, ``errorstat_<PREFIX>`` counts, the server's run_id and uptime."""
    return _counters(info, dict_fields(info))


def _counters(info: dict[str, Any], fields: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {name: info.get(name, 0) for name in COUNTER_METRICS}
    for name, value in fields:
        if name.startswith("errorstat_"):
            out[name] = int(value.get("count", 0))
    out["run_id"] = info.get("run_id", "")
    out["uptime_in_seconds"] = info.get("uptime_in_seconds", 0)
    return out


@dataclass
class Pending:
    node: str | None
    code: str
    severity: Severity
    title: str
    evidence: dict[str, Any]
    suggestion: str


class NodeView:
    # the checks call i(), t() and metric() ~150 times a run: each is one lookup here
    __slots__ = ("_info", "_metrics", "_t", "data", "local", "node", "pending", "run")

    def __init__(self, run: Run, data: NodeData, node: str | None, local: bool) -> None:
        self.run = run
        self.data = data
        self.node = node
        self.local = local
        """True when the server runs on this host (loopback): disk and THP can be read."""
        self.pending: list[Pending] = []
        self._info = data.info
        self._metrics = run.metrics if node is None else None
        t = run.data.get("redis.thresholds")
        if t is None:
            t = run.data["redis.thresholds"] = run.thresholds(DEFAULTS)
        self._t: dict[str, float] = t

    @property
    def info(self) -> dict[str, Any]:
        return self.data.info

    @property
    def config(self) -> dict[str, str]:
        return self.data.config

    def i(self, name: str, default: Any = 0) -> Any:
        """An INFO field (numbers as parsed by redis-py)."""
        return self._info.get(name, default)

    def t(self, name: str) -> float:
        """Threshold ``name``: the target's, the plugin config's, else the default."""
        return self._t[name]

    def metric(self, name: str, value: Any) -> None:
        if self._metrics is not None:
            self._metrics[name] = value
        else:
            self.run.metrics.setdefault("nodes", {}).setdefault(self.node, {})[name] = value

    def finding(self, code: str, severity: Severity, title: str, evidence: dict[str, Any],
                suggestion: str) -> None:
        self.pending.append(Pending(self.node, code, severity, title, evidence, suggestion))

    def metrics(self, values: Mapping[str, Any]) -> None:
        """:meth:`metric` for each of ``values``."""
        if self._metrics is not None:
            self._metrics.update(values)
        else:
            self.run.metrics.setdefault("nodes", {}).setdefault(self.node, {}).update(values)

    def _stored(self) -> list[tuple[dt.datetime, Mapping[str, Any]]]:
        """(time, this node's metrics) of each stored snapshot, in history's order."""
        node = self.node
        return self._memo(("stored", node), lambda: [
            (snap.at, snap.metrics if node is None
             else snap.metrics.get("nodes", {}).get(node, {}))
            for snap in self.run.history])

    def _select(self, metrics: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if self.node is None:
            return metrics
        node: Mapping[str, Any] | None = metrics.get("nodes", {}).get(self.node)
        return node

    def counters(self) -> dict[str, Any]:
        """:func:`counters` of this node's (first) INFO, computed once per run. Read only."""
        return self._memo("counters", lambda: _counters(self.info, self.dict_fields()))

    def dict_fields(self) -> list[tuple[str, dict[str, Any]]]:
        """:func:`dict_fields` of this node's (first) INFO, once per run. Read only."""
        return self._memo("dict_fields", lambda: dict_fields(self.info))

    def reading(self, second: bool = False) -> Reading:
        """This node's INFO as a counter reading (the in-run second one if asked and taken)."""
        if not (second and self.data.second is not None):
            return self._memo("reading", lambda: Reading.of(
                self.data.fetched_at, self.counters(), life=self.info.get("run_id", ""),
                uptime=self.info.get("uptime_in_seconds")))
        info = self.data.second
        return self._memo("reading2", lambda: Reading.of(
            self.data.second_at, counters(info), life=info.get("run_id", ""),
            uptime=info.get("uptime_in_seconds")))

    def past(self) -> list[Reading]:
        """This node's readings from stored history, oldest first (the list is shared: read only)."""
        return self._memo(("past", self.node), lambda: readings(
            self.run.history, life_key="run_id", uptime_key="uptime_in_seconds",
            select=self._select))

    def memo(self, key: Any, make: Callable[[], T]) -> T:
        """``make()``, computed once per node and run under ``key``."""
        return self._memo(key, make)

    def _memo(self, key: Any, make: Callable[[], T]) -> T:
        memo = self.data.memo
        if key not in memo:
            memo[key] = make()
        value: T = memo[key]
        return value

    def rate(self, name: str) -> Rate:
        """Counter ``name`` judged over the window (``rate_window_seconds``): from stored
        history, else from the in-run second reading the plugin took (see rates.py).
        Judged once per run and reading (deciding on a second reading judges them too)."""
        return self._memo(("rate", name, self.node, self.data.second is not None),
                          lambda: self._rate(name))

    def _rate(self, name: str) -> Rate:
        window = self.t("rate_window_seconds")
        first, past = self.reading(), self.past()
        if name.startswith("errorstat_"):
            # INFO errorstats lists only the prefixes seen since start: a reading of this
            # server without one counted 0 of them (not "unknown", which ends a window)
            first, past = _zero(first, name), [_zero(r, name) for r in past]
        r = counter_rate(name, first, past, window_seconds=window)
        if self.data.second is None or r.source == "uptime":
            return r  # a server younger than the window: its start is the window
        second = self.reading(second=True)
        # the in-run window is the sampling interval, whatever rate_window_seconds says
        return counter_rate(name, second, [*past, first],
                            window_seconds=max(window, second.at - first.at + 1.0),
                            in_run_since=first.at)

    def counter_finding(self, name: str, code: str, what: str, evidence: dict[str, Any],
                        suggestion: str, moving: Severity = Severity.WARNING) -> Rate | None:
        """One finding about counter ``name`` judged as a rate: ``moving`` severity when it
        rose within the window, INFO with the lifetime total and when it last moved when
        it did not (or when no window could be had). None, and no finding, at 0."""
        if (self.reading(second=True).value(name) or 0.0) <= 0:
            return None  # the rate's total, read without judging the window (the usual case)
        r = self.rate(name)
        if r.total <= 0:
            return None
        ev = {**evidence, **r.evidence()}
        if r.moving:
            assert r.delta is not None and r.seconds is not None
            self.finding(code, moving, f"{r.delta:g} {what} {r.window_text()} "
                         f"({r.per_second or 0:.3g}/s)", ev, suggestion)
        elif r.needs_sample:
            self.finding(code, Severity.INFO, f"{r.total:g} {what} since start; no window to "
                         "judge whether it still happens", ev,
                         "Run again: history from this run gives the rate.")
        else:
            self.finding(code, Severity.INFO, f"{r.total:g} {what} since start, none "
                         f"{r.window_text()} (last moved: {r.last_moved_text()})", ev,
                         "Nothing to do now: the counter is not moving.")
        return r

    def previous(self, name: str) -> tuple[float, Any] | None:
        """(seconds since, value) of the latest earlier run of the same server process
        that recorded ``name``, or None."""
        run_id = self.info.get("run_id")
        for at, m in reversed(self._stored()):
            if name in m and m.get("run_id", run_id) == run_id:
                return self._seconds_since(at), m[name]
        return None

    def _seconds_since(self, at: dt.datetime) -> float:
        now = self._memo("fetched_at", lambda: dt.datetime.fromtimestamp(
            self.data.fetched_at, dt.UTC))
        return max((now - at).total_seconds(), 0.0)


def _zero(r: Reading, name: str) -> Reading:
    if name in r.values or "run_id" not in r.values:  # no run_id: not our counters
        return r
    return replace(r, values={**r.values, name: 0})


def wants_second_reading(v: NodeView) -> bool:
    """A counter moved since start with no stored window, or the RSS says the server
    swaps (Redis refreshes RSS periodically: confirm it): read INFO once more."""
    cats = set(v.run.categories)
    if cats & {"memory", "connection", "persistence", "performance"}:
        for name, value in v.counters().items():
            rated = name in RATE_COUNTERS or name.startswith("errorstat_")
            if rated and isinstance(value, (int, float)) and value > 0 \
                    and v.rate(name).needs_sample:
                return True
    if "performance" in cats and _hit_rate_low_since_start(v) \
            and v.rate("keyspace_hits").needs_sample:
        return True  # a low lifetime hit rate: judge the lookups of the next second
    if "memory" in cats:
        ratio = float(v.i("mem_fragmentation_ratio", 0))
        if 0 < ratio < v.t("fragmentation_ratio_min") \
                and int(v.i("used_memory")) >= v.t("swap_min_bytes"):
            return True
    return False


def _hit_rate_low_since_start(v: NodeView) -> bool:
    hits, misses = int(v.i("keyspace_hits")), int(v.i("keyspace_misses"))
    return hits + misses >= v.t("hit_rate_min_lookups") \
        and hits < v.t("hit_rate_min") * (hits + misses)


def flush(run: Run, views: list[NodeView]) -> None:
    """Turn every view's pending findings into run findings, merged across nodes."""
    by_code: dict[str, list[Pending]] = {}
    for v in views:
        for p in v.pending:
            by_code.setdefault(p.code, []).append(p)
    for code, items in by_code.items():
        worst = max(items, key=lambda p: p.severity)
        nodes = [p.node for p in items]
        if len(items) == 1 or None in nodes or len(set(nodes)) < len(nodes):
            # merge only the same finding from several real nodes; several findings of one
            # node (a standalone server, or several refused commands) stay distinct
            for p in items:
                ev = p.evidence if p.node is None else {"node": p.node, **p.evidence}
                title = p.title if p.node is None else f"{p.title} (node {p.node})"
                run.finding(code, p.severity, title, evidence=ev, suggestion=p.suggestion)
            continue
        run.finding(code, worst.severity, f"{worst.title} (and on {len(items) - 1} more node(s))",
                    evidence={"nodes": nodes, "per_node": {p.node: p.evidence for p in items}},
                    suggestion=worst.suggestion)
    if len(views) > 1 or (views and views[0].node is not None):
        nodes = run.metrics.get("nodes", {})
        for name in SUMMED_METRICS:
            values = [m[name] for m in nodes.values() if isinstance(m.get(name), (int, float))]
            if values:
                run.metrics[name] = sum(values)
