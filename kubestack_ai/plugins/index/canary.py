"""A/B trial of a plugin version (seed section 9.4): the pure logic.

A canary runs version V of a plugin on a stable share of its targets: a target is on the
canary when the first 8 hex digits of SHA-256(``plugin-id NUL target-key``), modulo
10,000, fall below ``share`` percent (so the same targets from run to run, and a larger
share keeps the targets a smaller one had). The state is one small file beside the
installed versions, ``$KSA_HOME/plugins/ID/canary.json``; workers read it when the
plugin's stored generation moves (starting, ending or promoting a canary moves it).

The comparison reads the plugin's stored runs over the canary period, each of which
records the version that ran (``result.plugin_version``): per version the runs, failures
(outcome failed or killed), time-outs, duration p50 and p95, statuses; and the finding
codes one version raised on a target that the other version did not raise on the same
target (its runs before the canary, on the current version, are the other side's).

A canary ends itself when, with at least ``min_runs`` runs on each side, its failure
rate (failures and time-outs over runs) exceeds the current version's by more than
``margin``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PluginIndexError
from .installed import plugins_root

FILE = "canary.json"
FAILED = ("failed", "killed")


def chosen(plugin_id: str, target_key: str, share: float) -> bool:
    h = int(hashlib.sha256(f"{plugin_id}\0{target_key}".encode()).hexdigest()[:8], 16)
    return h % 10000 < share * 100


def path(home: Path, plugin_id: str) -> Path:
    return plugins_root(home) / plugin_id / FILE


def read(home: Path, plugin_id: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path(home, plugin_id).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise PluginIndexError(f"{plugin_id}: {FILE} cannot be read ({type(e).__name__})") \
            from None
    return data if isinstance(data, dict) else None


def write(home: Path, plugin_id: str, state: dict[str, Any]) -> None:
    p = path(home, plugin_id)
    tmp = p.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, p)


def active(state: dict[str, Any] | None) -> bool:
    return bool(state) and state.get("state") == "running"  # type: ignore[union-attr]


def end(home: Path, plugin_id: str, how: str, reason: str = "") -> dict[str, Any]:
    """Mark the running canary ended (``aborted``, ``auto-aborted``, ``promoted``)."""
    state = read(home, plugin_id)
    if not active(state):
        raise PluginIndexError(f"{plugin_id}: no canary is running")
    assert state is not None
    state.update(state=how, ended_at=now_iso(), reason=reason)
    write(home, plugin_id, state)
    return state


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Run:
    """What a comparison needs of one stored run."""

    target: str
    version: str
    status: str
    outcome: str
    duration: float
    codes: frozenset[str]
    started_at: dt.datetime


@dataclass
class Side:
    version: str
    runs: int = 0
    failures: int = 0
    timeouts: int = 0
    durations: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    targets: set[str] = field(default_factory=set)

    @property
    def failure_rate(self) -> float:
        return (self.failures + self.timeouts) / self.runs if self.runs else 0.0

    def pct(self, q: float) -> float | None:
        if not self.durations:
            return None
        s = sorted(self.durations)
        return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]

    def as_dict(self) -> dict[str, Any]:
        return {"version": self.version, "runs": self.runs, "failures": self.failures,
                "timeouts": self.timeouts, "failure_rate": round(self.failure_rate, 4),
                "p50": self.pct(0.5), "p95": self.pct(0.95),
                "statuses": dict(sorted(self.statuses.items())), "targets": len(self.targets)}


def from_records(records: Iterable[Any]) -> list[Run]:
    """Stored runs (storage's RunRecord) as the comparison reads them."""
    return [Run(r.target_key, r.result.plugin_version, r.status, r.outcome, r.duration,
                frozenset(f.code for f in r.result.findings), r.started_at) for r in records]


def compare(state: dict[str, Any], runs: Iterable[Run]) -> dict[str, Any]:
    """The two versions side by side over the canary period (see the module docstring)."""
    start = _t(state["started_at"])
    stop = _t(state["ended_at"]) if state.get("ended_at") else None
    cur, new = state["current_version"], state["version"]
    sides = {cur: Side(cur), new: Side(new)}
    codes: dict[tuple[str, str], set[str]] = defaultdict(set)  # (target, version) -> codes
    for r in runs:
        if r.version not in sides:
            continue
        codes[(r.target, r.version)] |= r.codes
        if r.started_at < start or (stop is not None and r.started_at > stop):
            continue  # outside the period: only the per-target codes count
        s = sides[r.version]
        s.runs += 1
        s.failures += r.outcome in FAILED
        s.timeouts += r.outcome == "timed_out"
        s.durations.append(r.duration)
        s.statuses[r.status] += 1
        s.targets.add(r.target)
    only: dict[str, dict[str, list[str]]] = {cur: {}, new: {}}
    for target in sorted({t for t, _ in codes}):
        if (target, cur) not in codes or (target, new) not in codes:
            continue  # the same target on both versions, or no claim
        for a, b in ((cur, new), (new, cur)):
            for code in sorted(codes[(target, a)] - codes[(target, b)]):
                only[a].setdefault(code, []).append(target)
    return {"plugin_id": state["plugin_id"], "state": state["state"],
            "share": state["share"], "started_at": state["started_at"],
            "ended_at": state.get("ended_at"), "reason": state.get("reason", ""),
            "current": sides[cur].as_dict(), "canary": sides[new].as_dict(),
            "only_current": only[cur], "only_canary": only[new]}


def report(home: Path, plugin_id: str,
           runs_since: Callable[[dt.datetime], Iterable[Any]]) -> dict[str, Any] | None:
    """The comparison of the plugin's last canary (None: it never had one), from the
    stored runs ``runs_since(t)`` gives: the canary period, and as long again before it
    (at least an hour), where the canary targets ran the current version."""
    state = read(home, plugin_id)
    if state is None:
        return None
    start = _t(state["started_at"])
    stop = _t(state["ended_at"]) if state.get("ended_at") else dt.datetime.now(dt.UTC)
    since = start - max(stop - start, dt.timedelta(hours=1))
    return compare(state, from_records(runs_since(since)))


def abort_reason(state: dict[str, Any], report: dict[str, Any]) -> str | None:
    """Why the canary must end itself, or None."""
    cur, new = report["current"], report["canary"]
    need = int(state.get("min_runs", 5))
    if cur["runs"] < need or new["runs"] < need:
        return None
    margin = float(state.get("margin", 0.1))
    if new["failure_rate"] > cur["failure_rate"] + margin:
        return (f"{state['plugin_id']} {new['version']} failed {new['failures'] + new['timeouts']}"
                f" of {new['runs']} runs ({new['failure_rate']:.0%}), "
                f"{cur['version']} {cur['failures'] + cur['timeouts']} of {cur['runs']} "
                f"({cur['failure_rate']:.0%}): more than the margin {margin:.0%} worse")
    return None


def _t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
