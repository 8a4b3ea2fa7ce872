"""Connection: clients against maxclients, rejections, blocked and idle clients, sources."""

from __future__ import annotations

from collections import Counter

from ...models import Severity
from ..constants import ACL_NEEDED, IGNORED_CLIENT_FLAGS
from ..view import NodeView

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO


def _source(addr: str) -> str:
    host, _, _ = addr.rpartition(":")
    return host or addr


def check(v: NodeView) -> None:
    connected = int(v.i("connected_clients"))
    maxclients = int(v.i("maxclients")) or int(v.config.get("maxclients", 0) or 0)
    blocked = int(v.i("blocked_clients"))
    for name in ("connected_clients", "blocked_clients", "rejected_connections",
                 "total_connections_received"):
        v.metric(name, v.i(name))
    v.metric("run_id", v.i("run_id", ""))

    if maxclients:
        _clients_high(v, connected, maxclients)
    _rejected(v, maxclients)
    if "clients" in v.data.errors:
        v.finding("redis.connection.permission_missing", INFO,
                  "CLIENT LIST refused: sources and idle clients not checked",
                  {"command": "CLIENT LIST", "error": v.data.errors["clients"],
                   "acl": ACL_NEEDED["clients"]},
                  f"Grant the diagnostics user {ACL_NEEDED['clients']}.")
        return
    _clients(v, connected, maxclients, blocked)


def _clients_high(v: NodeView, connected: int, maxclients: int) -> None:
    pct = 100.0 * connected / maxclients
    v.metric("clients_pct", round(pct, 2))
    warn, crit = v.t("clients_pct_warning"), v.t("clients_pct_critical")
    if pct <= warn:
        return
    sev = C if pct > crit else W
    ev: dict[str, object] = {"connected_clients": connected, "maxclients": maxclients,
                             "usage_pct": round(pct, 2),
                             "threshold_pct": crit if sev is C else warn}
    if "clients" in v.data.errors:
        where = "CLIENT LIST (refused to the diagnostics user)"
    else:
        # the suggestion points at these: the finding carries them
        sources = Counter(_source(c.get("addr", "?")) for c in v.data.clients)
        ev["by_source"] = dict(sources.most_common(int(v.t("top_n"))))
        where = "by_source"
    v.finding("redis.connection.clients_high", sev,
              f"{connected} of {maxclients} client slots used ({pct:.1f}%)", ev,
              f"Find the hosts holding connections ({where}), cap their connection "
              "pools, and raise maxclients (and the file limit) if the load is real.")


def _rejected(v: NodeView, maxclients: int) -> None:
    v.counter_finding("rejected_connections", "redis.connection.rejected",
                      "connections rejected (maxclients reached)", {"maxclients": maxclients},
                      "Raise maxclients (and the file limit) or cut the connections: "
                      "clients got errors.")


def _clients(v: NodeView, connected: int, maxclients: int, blocked: int) -> None:
    idle_after = v.t("idle_seconds")
    sources: Counter[str] = Counter()
    idle_by_source: Counter[str] = Counter()
    blocked_cmds: Counter[str] = Counter()
    blocked_sources: Counter[str] = Counter()
    oldest_idle = 0
    for c in v.data.clients:
        src = _source(c.get("addr", "?"))
        sources[src] += 1
        flags = c.get("flags", "")
        if "b" in flags:
            blocked_cmds[c.get("cmd", "?")] += 1
            blocked_sources[src] += 1
        if IGNORED_CLIENT_FLAGS.intersection(flags):
            continue
        idle = int(c.get("idle", 0))
        if idle >= idle_after:
            idle_by_source[src] += 1
            oldest_idle = max(oldest_idle, idle)
    top_n = int(v.t("top_n"))
    idle_count = sum(idle_by_source.values())
    v.metric("idle_clients", idle_count)
    v.metric("client_sources", dict(sources.most_common(top_n)))
    if blocked > 0:
        sev = W if blocked >= v.t("blocked_clients_warning") else INFO
        v.finding("redis.connection.blocked_clients", sev,
                  f"{blocked} clients blocked waiting on keys",
                  {"blocked_clients": blocked, "commands": dict(blocked_cmds.most_common(top_n)),
                   "by_source": dict(blocked_sources.most_common(top_n)),
                   "threshold": v.t("blocked_clients_warning")},
                  "Normal for queue consumers (BLPOP, XREAD BLOCK); many of them, or a "
                  "rising count, means producers stopped or consumers are over-provisioned.")
    if idle_count >= v.t("idle_clients_warning"):
        v.finding("redis.connection.idle_clients", W,
                  f"{idle_count} clients idle for {idle_after:g}s or more",
                  {"idle_clients": idle_count, "idle_seconds": idle_after,
                   "oldest_idle_seconds": oldest_idle,
                   "by_source": dict(idle_by_source.most_common(top_n)),
                   "threshold": v.t("idle_clients_warning")},
                  "Fix the leaking pools at the top sources, set the server's timeout, or run "
                  "the kill_idle_clients action with min_idle_seconds.")
    if maxclients and sources:
        src, count = sources.most_common(1)[0]
        share = 100.0 * count / maxclients
        if share > v.t("source_share_pct_warning"):
            v.finding("redis.connection.source_concentrated", W,
                      f"{src} holds {count} connections ({share:.1f}% of maxclients)",
                      {"source": src, "connections": count, "maxclients": maxclients,
                       "threshold_pct": v.t("source_share_pct_warning")},
                      "One host can exhaust maxclients: cap its pool size.")
