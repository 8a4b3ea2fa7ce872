"""Sentinel: the sentinels' own health: reachable, quorum, master agreed, replicas known."""

from __future__ import annotations

from typing import Any

from ...base import Run
from ...models import Finding, Severity
from ..topology import Topology

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO


def check(run: Run, topo: Topology) -> None:
    s = topo.sentinel
    if s is None:
        return
    name = s["master_name"]
    answers: dict[str, dict[str, Any]] = s["answers"]
    down: dict[str, str] = s["unreachable"]
    quorum = next((int(a["master"]["quorum"]) for a in answers.values()
                   if isinstance(a.get("master"), dict)), None)
    run.metric("sentinels_reachable", len(answers))
    run.metric("sentinels_unreachable", len(down))
    run.metric("sentinel_quorum", quorum)
    run.metric("sentinel_master", topo.master)
    if down:
        short = quorum is not None and len(answers) < quorum
        run.finding("redis.sentinel.unreachable", C if short else W,
                    f"{len(down)} of {len(down) + len(answers)} sentinels unreachable"
                    + (": fewer than the quorum answer" if short else ""),
                    evidence={"unreachable": down, "reachable": sorted(answers), "quorum": quorum},
                    suggestion="Restart the sentinels; without a quorum no failover happens.")
    addrs: dict[str, str | None] = {}
    for ep, a in answers.items():
        if "error" in a:
            run.finding("redis.sentinel.master_unknown", C,
                        f"Sentinel {ep} does not monitor {name!r}",
                        evidence={"sentinel": ep, "master_name": name, "error": a["error"]},
                        suggestion="Check master_name and the sentinel's configuration.")
            continue
        addrs[ep] = a.get("addr")
        if a.get("ckquorum") is not True:
            run.finding("redis.sentinel.quorum_unreachable", C,
                        f"Sentinel {ep}: quorum or failover authorization cannot be reached",
                        evidence={"sentinel": ep, "master_name": name, "ckquorum": a.get("ckquorum")},
                        suggestion="Start more sentinels or lower the quorum; a failover "
                                   "cannot happen now.")
        m = a.get("master") or {}
        if m.get("is_odown") or m.get("is_sdown"):
            run.finding("redis.sentinel.master_down", C,
                        f"Sentinel {ep} sees master {name!r} as down ({m.get('flags')})",
                        evidence={"sentinel": ep, "flags": m.get("flags"),
                                  "master": f"{m.get('ip')}:{m.get('port')}"},
                        suggestion="A failover should follow; check the master and the logs.")
        others = int(m.get("num-other-sentinels", 0)) + 1
        if others < 3:
            run.finding("redis.sentinel.too_few_sentinels", W,
                        f"Sentinel {ep} knows {others} sentinels (3 or more are needed)",
                        evidence={"sentinel": ep, "sentinels_known": others},
                        suggestion="Run at least three sentinels on separate hosts.")
        replicas = a.get("replicas") or []
        bad = [f"{r.get('ip')}:{r.get('port')}" for r in replicas
               if r.get("is_sdown") or r.get("is_disconnected")]
        if not replicas:
            run.finding("redis.sentinel.no_replicas", W,
                        f"Sentinel {ep} knows no replica of {name!r}: nothing to fail over to",
                        evidence={"sentinel": ep, "replicas": 0},
                        suggestion="Add a replica of the master.")
        elif bad:
            run.finding("redis.sentinel.replica_down", W,
                        f"Sentinel {ep} sees {len(bad)} replicas down",
                        evidence={"sentinel": ep, "replicas_down": bad,
                                  "replicas_known": len(replicas)},
                        suggestion="Restart the replicas; failover candidates are missing.")
    distinct = {v for v in addrs.values() if v}
    if len(distinct) > 1:
        run.finding("redis.sentinel.master_disagreement", C,
                    f"Sentinels disagree on the master of {name!r}",
                    evidence={"answers": addrs},
                    suggestion="A split brain or a failover in progress: check every "
                               "sentinel's view and the network between them.")
    _dedupe(run)


def _dedupe(run: Run) -> None:
    """Several sentinels reporting the same fact make one finding listing them."""
    seen: dict[str, int] = {}
    merged: list[Finding] = []
    for f in run.findings:
        if f.category == "sentinel" and f.code in seen and "sentinel" in f.evidence:
            prev = merged[seen[f.code]]
            ev = dict(prev.evidence)
            ev.setdefault("also_sentinels", []).append(f.evidence["sentinel"])
            merged[seen[f.code]] = prev.model_copy(update={"evidence": ev})
            continue
        if f.category == "sentinel":
            seen[f.code] = len(merged)
        merged.append(f)
    run.findings[:] = merged
