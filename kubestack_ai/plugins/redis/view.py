"""NodeView: a check's window on one node, and the merge of findings across nodes.

Checks are written once, per node. Standalone: findings and metrics go straight into
the run. Cluster and Sentinel: each finding names its node in the evidence, metrics go
under ``metrics["nodes"][addr]``, and a finding raised by several nodes becomes one
finding listing them (worst severity, per-node evidence).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..base import Run
from ..models import Severity
from .constants import DEFAULTS, SUMMED_METRICS
from .fetch import NodeData


@dataclass
class Pending:
    node: str | None
    code: str
    severity: Severity
    title: str
    evidence: dict[str, Any]
    suggestion: str


class NodeView:
    __slots__ = ("data", "local", "node", "pending", "run")

    def __init__(self, run: Run, data: NodeData, node: str | None, local: bool) -> None:
        self.run = run
        self.data = data
        self.node = node
        self.local = local
        """True when the server runs on this host (loopback): disk and THP can be read."""
        self.pending: list[Pending] = []

    @property
    def info(self) -> dict[str, Any]:
        return self.data.info

    @property
    def config(self) -> dict[str, str]:
        return self.data.config

    def i(self, name: str, default: Any = 0) -> Any:
        """An INFO field (numbers as parsed by redis-py)."""
        return self.data.info.get(name, default)

    def t(self, name: str) -> float:
        return self.run.threshold(name, DEFAULTS[name])

    def metric(self, name: str, value: Any) -> None:
        if self.node is None:
            self.run.metric(name, value)
        else:
            self.run.metrics.setdefault("nodes", {}).setdefault(self.node, {})[name] = value

    def finding(self, code: str, severity: Severity, title: str, evidence: dict[str, Any],
                suggestion: str) -> None:
        self.pending.append(Pending(self.node, code, severity, title, evidence, suggestion))

    def history(self, name: str) -> list[tuple[dt.datetime, Any]]:
        """Earlier values of a metric of this node, oldest first, from the same server
        process (a restart resets counters: values from another run_id are dropped)."""
        run_id = self.info.get("run_id")
        out = []
        for snap in self.run.history:
            m = snap.metrics if self.node is None else snap.metrics.get("nodes", {}).get(self.node, {})
            if name in m and m.get("run_id", run_id) == run_id:
                out.append((snap.at, m[name]))
        return out

    def previous(self, name: str) -> tuple[float, Any] | None:
        """(seconds since, value) of the latest earlier run, or None."""
        h = self.history(name)
        if not h:
            return None
        at, value = h[-1]
        now = dt.datetime.fromtimestamp(self.data.fetched_at, dt.UTC)
        return max((now - at).total_seconds(), 0.0), value


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
