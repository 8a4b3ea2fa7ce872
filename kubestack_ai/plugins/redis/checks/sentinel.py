"""Sentinel: the sentinels' own health: reachable, quorum, master agreed, replicas known."""

from __future__ import annotations

from typing import Any

from ...base import Run
from ...models import Finding, Severity
from ..topology import Topology
from .cluster import was_promoted

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
    _failover(run, topo, answers)
    _dedupe(run)


def _failover(run: Run, topo: Topology, answers: dict[str, dict[str, Any]]) -> None:
    """A master change: from the stored history (the last run named another master) or,
    without one, from the sentinels' config epoch (> 0 after a failover) and the new
    master's ``master_replid2`` (set when a replica is promoted). INFO while the new
    topology is healthy; a warning while the old master is still down."""
    name = topo.sentinel["master_name"] if topo.sentinel else ""
    masters = [a["master"] for a in answers.values() if isinstance(a.get("master"), dict)]
    epoch = max((int(m.get("config-epoch", 0)) for m in masters), default=0)
    run.metric("sentinel_config_epoch", epoch)
    info = topo.data[topo.master].info if topo.master in topo.data else {}
    promoted = was_promoted(info)
    prev = next(((snap.at, snap.metrics) for snap in reversed(run.history)
                 if snap.metrics.get("sentinel_master")), None)
    old: str | None = None
    since: Any = None
    if prev is not None:
        if prev[1]["sentinel_master"] == topo.master:
            return
        old, since = str(prev[1]["sentinel_master"]), str(prev[0])
    elif epoch == 0 or not promoted:
        return  # no history and no sign of a promotion
    # the old master, if the sentinels still know it, is listed among the replicas
    down_replicas = {f"{r.get('ip')}:{r.get('port')}" for a in answers.values()
                     for r in a.get("replicas") or [] if r.get("is_sdown")}
    still_down = old is not None and (old in down_replicas or old in topo.unreachable)
    if old is None and down_replicas:
        still_down = True
    reported_ms = min((int(m.get("role-reported-time", 0)) for m in masters), default=None)
    run.finding("redis.sentinel.failover", W if still_down else INFO,
                f"Sentinel failover of {name!r}: "
                + (f"master moved from {old} to {topo.master}" if old else
                   f"{topo.master} was promoted (config epoch {epoch})")
                + ("; the old master is still down" if still_down else ""),
                evidence={"master_name": name, "from": old, "to": topo.master,
                          "since": since or "no stored history",
                          "config_epoch": epoch,
                          "previous_config_epoch": prev[1].get("sentinel_config_epoch")
                          if prev else None,
                          "role_reported_s_ago": round(reported_ms / 1000, 1)
                          if reported_ms else None,
                          "master_replid2": info.get("master_replid2") if promoted else None,
                          "second_repl_offset": info.get("second_repl_offset"),
                          "old_master_down": still_down,
                          "replicas_down": sorted(down_replicas)},
                suggestion=("Bring the old master back: the sentinels reconfigure it as a "
                            "replica of the new one." if still_down else
                            "Nothing to do if the failover was expected; check why the old "
                            "master failed."))


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
