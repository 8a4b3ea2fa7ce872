"""What the pages and the JSON API show, built from storage records (one shape for both)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from kubestack_ai.plugins.keymetrics import key_metrics
from kubestack_ai.plugins.models import utcnow
from kubestack_ai.storage import STATUSES, RunSummary, Store, TargetRecord

from . import charts

PAGE = 100
"""Targets per page of the fleet (worst first); the counts cover every target."""
STRIP_HOURS = 24
"""The front page's status strip: each target's worst status per hour, this many hours."""
RECENT_RUNS = 30
"""The target page's run list: this many runs, each with what it cost its plugin host."""
TREND_HOURS = 24
"""The target page's charts: this many hours of runs by default (``?hours=``, up to a week)."""


@dataclass(frozen=True)
class Filters:
    status: str = ""
    type: str = ""
    q: str = ""
    offset: int = 0
    limit: int = PAGE
    adhoc: bool = False
    """The one-off targets (run by hand, not in the fleet) instead of the fleet's."""

    def normalized(self) -> Filters:
        status = self.status if self.status in STATUSES else ""
        return Filters(status, self.type.strip()[:128], self.q.strip()[:200],
                       max(0, self.offset), max(1, min(self.limit, 1000)), self.adhoc)


def target_json(t: TargetRecord, now: dt.datetime) -> dict[str, Any]:
    return {
        "key": t.target_key, "name": t.name, "type": t.type, "plugin_id": t.plugin_id,
        "status": t.shown_status(now), "verdict": t.status, "stale": t.is_stale(now),
        "outcome": t.outcome, "last_run": _iso(t.started_at), "duration": round(t.duration, 4),
        "status_since": _iso(t.status_since), "status_runs": t.status_runs,
        "stale_after": _iso(t.stale_after),
        "worst_finding": ({"code": t.worst_code, "title": t.worst_title}
                          if t.worst_code else None),
        "findings": list(t.findings), "runs": dict(t.runs), "run_id": t.run_id,
    }


def fleet(store: Store, f: Filters) -> dict[str, Any]:
    now = utcnow()
    counts, rows, total = store.fleet_page(status=f.status or None, type=f.type or None,
                                           text=f.q or None, limit=f.limit, offset=f.offset,
                                           now=now, adhoc=f.adhoc)
    other = store.fleet_counts(now, adhoc=not f.adhoc).total
    strips = store.status_strips([t.target_key for t in rows], STRIP_HOURS, now)
    targets = []
    for t in rows:
        out = target_json(t, now)
        out["last_24h"] = strips.get(t.target_key, [])
        targets.append(out)
    return {"now": _iso(now), "counts": {"by_status": counts.by_status, "by_type": counts.by_type,
                                         "total": counts.total},
            "adhoc": f.adhoc, "other_total": other,
            "filters": {"status": f.status, "type": f.type, "q": f.q},
            "total": total, "offset": f.offset, "limit": f.limit, "targets": targets}


def target(store: Store, key: str) -> dict[str, Any] | None:
    now = utcnow()
    t = store.target(key)
    if t is None:
        return None
    run = store.get_run(t.run_id)
    runs = store.run_summaries(key, limit=200)
    out = target_json(t, now)
    out["result"] = run.result.model_dump(mode="json") if run is not None else None
    out["finding_history"] = [
        {"code": s.code, "severity": s.severity, "title": s.title, "state": s.state,
         "first_seen": _iso(s.first_seen), "last_seen": _iso(s.last_seen)}
        for s in store.finding_spans(key)]
    out["timeline"] = timeline(runs)
    recent = runs[:RECENT_RUNS]
    resources = store.run_resources([r.run_id for r in recent])
    out["recent_runs"] = [{**run_json(r), "resources": resources.get(r.run_id)}
                          for r in recent]
    out["audit"] = [{"at": _iso(a.at), "plugin_id": a.plugin_id, "action": a.action,
                     "ok": a.ok, "outcome": a.outcome, "error": a.error,
                     "duration": round(a.duration, 4)}
                    for a in store.audit_log(limit=50, target=t.target_key)]
    return out


def trends(store: Store, t: dict[str, Any], hours: int = TREND_HOURS) -> list[dict[str, Any]]:
    """The target page's charts: one per key metric its plugin declares that the runs of
    the last ``hours`` reported, as SVG."""
    kms = key_metrics(t["plugin_id"])
    if not kms:
        return []
    now = utcnow()
    since = now - dt.timedelta(hours=hours)
    points = store.metric_points(t["key"], [k.name for k in kms], since)
    out = []
    for km in kms:
        svg = charts.svg(km, points, since, now)
        if svg is not None:
            out.append({"name": km.name, "title": km.title, "unit": km.unit, "svg": svg})
    return out


def history(store: Store, key: str, limit: int = 200) -> list[dict[str, Any]]:
    return [run_json(r) for r in store.run_summaries(key, limit=max(1, min(limit, 5000)))]


def run_json(r: RunSummary) -> dict[str, Any]:
    return {"run_id": r.run_id, "status": r.status, "outcome": r.outcome,
            "started_at": _iso(r.started_at), "duration": round(r.duration, 4)}


def timeline(runs: list[RunSummary]) -> list[dict[str, Any]]:
    """Runs (newest first) folded into status segments, oldest first."""
    out: list[dict[str, Any]] = []
    for r in reversed(runs):
        if out and out[-1]["status"] == r.status:
            out[-1]["to"] = _iso(r.started_at)
            out[-1]["runs"] += 1
        else:
            out.append({"status": r.status, "from": _iso(r.started_at),
                        "to": _iso(r.started_at), "runs": 1})
    return out


def ago(iso: str | None, now: dt.datetime | None = None) -> str:
    """``3m 10s`` from an ISO time to now, for people."""
    if not iso:
        return "-"
    secs = int(((now or utcnow()) - dt.datetime.fromisoformat(iso)).total_seconds())
    if secs < 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            rest = secs % size
            sub = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            return f"{secs // size}{unit} {rest // sub[1]}{sub[0]}" if rest >= sub[1] else \
                f"{secs // size}{unit}"
    return f"{secs}s"


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat()
