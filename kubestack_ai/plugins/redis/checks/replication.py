"""Replication: role, link to the master, replica lag in bytes and seconds, backlog."""

from __future__ import annotations

from typing import Any

from ...models import Severity
from ..view import NodeView

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO


def check(v: NodeView) -> None:
    role = str(v.i("role", "master"))
    v.metric("role", role)
    v.metric("run_id", v.i("run_id", ""))
    for name in ("master_repl_offset", "connected_slaves", "sync_full", "sync_partial_ok",
                 "sync_partial_err", "repl_backlog_size"):
        v.metric(name, v.i(name))
    if role == "slave":
        _replica(v)
    else:
        _master(v)


def _replica(v: NodeView) -> None:
    master = f"{v.i('master_host', '?')}:{v.i('master_port', '?')}"
    link = str(v.i("master_link_status", "down"))
    v.metric("master_link_up", link == "up")
    offset = int(v.i("slave_repl_offset"))
    v.metric("slave_repl_offset", offset)
    if link != "up":
        down = v.i("master_link_down_since_seconds", None)
        ev: dict[str, Any] = {"master": master, "master_link_status": link,
                              "master_link_down_since_seconds": down,
                              "master_sync_in_progress": int(v.i("master_sync_in_progress"))}
        v.finding("redis.replication.link_down", C,
                  f"Replica's link to master {master} is {link}"
                  + (f" for {down}s" if isinstance(down, int) and down >= 0 else ""),
                  ev, "Check that the master runs and is reachable from the replica, its "
                      "masterauth, and the replica's log; the replica serves stale data.")
    else:
        io = int(v.i("master_last_io_seconds_ago", -1))
        v.metric("master_last_io_seconds_ago", io)
        if io > v.t("master_io_seconds_warning"):
            v.finding("redis.replication.master_silent", W,
                      f"No data from master {master} for {io}s",
                      {"master": master, "master_last_io_seconds_ago": io,
                       "threshold_seconds": v.t("master_io_seconds_warning")},
                      "The master may be stalled or the network lossy; check repl-timeout.")
    if int(v.i("master_sync_in_progress")):
        v.finding("redis.replication.sync_in_progress", INFO,
                  f"Full sync from {master} in progress",
                  {"master": master, "master_sync_total_bytes": v.i("master_sync_total_bytes"),
                   "master_sync_read_bytes": v.i("master_sync_read_bytes")},
                  "Wait for it; repeated full syncs mean the backlog is too small.")
    if int(v.i("slave_read_only", 1)) == 0:
        v.finding("redis.replication.replica_writable", W, "Replica accepts writes",
                  {"slave_read_only": 0, "master": master},
                  "Set replica-read-only yes: writes to a replica are lost at the next sync.")


def _replicas(v: NodeView) -> list[dict[str, Any]]:
    return [value for name, value in v.dict_fields()
            if name.startswith("slave") and name[5:].isdigit()]


def _master(v: NodeView) -> None:
    offset = int(v.i("master_repl_offset"))
    replicas = _replicas(v)
    lag_limit, ack_limit = v.t("repl_lag_bytes_warning"), v.t("repl_ack_seconds_warning")
    lags = {}
    for r in replicas:
        addr = f"{r.get('ip')}:{r.get('port')}"
        lag_bytes = max(offset - int(r.get("offset", 0)), 0)
        lags[addr] = lag_bytes
        ev = {"replica": addr, "state": r.get("state"), "lag_bytes": lag_bytes,
              "ack_lag_seconds": r.get("lag"), "master_repl_offset": offset,
              "replica_offset": r.get("offset")}
        if r.get("state") != "online":
            v.finding("redis.replication.replica_not_online", W,
                      f"Replica {addr} is {r.get('state')}", ev,
                      "A replica resyncing for long, or often, needs a bigger backlog or "
                      "a faster link.")
        elif lag_bytes > lag_limit or int(r.get("lag", 0)) > ack_limit:
            v.finding("redis.replication.replica_lag", W,
                      f"Replica {addr} is {lag_bytes} bytes / {r.get('lag')}s behind",
                      {**ev, "threshold_bytes": lag_limit, "threshold_seconds": ack_limit},
                      "Check the replica's load and the network; a lagging replica serves "
                      "stale reads and may need a full resync.")
    v.metric("replica_lag_bytes", lags)
    _backlog(v, offset, replicas)


def _backlog(v: NodeView, offset: int, replicas: list[dict[str, Any]]) -> None:
    size = int(v.i("repl_backlog_size"))
    partial_err = int(v.i("sync_partial_err"))
    prev_err = v.previous("sync_partial_err")
    if prev_err is not None and partial_err > int(prev_err[1]):
        v.finding("redis.replication.partial_resync_failed", W,
                  f"{partial_err - int(prev_err[1])} partial resyncs failed since the last run",
                  {"sync_partial_err": partial_err, "repl_backlog_size": size},
                  "Replicas fell out of the backlog and needed a full sync: raise "
                  "repl-backlog-size.")
        return
    prev = v.previous("master_repl_offset")
    if prev is None or not replicas or not size:
        return
    seconds, before = prev
    written = offset - int(before)
    if seconds <= 0 or written <= 0:
        return
    rate = written / seconds
    covers = size / rate
    v.metric("repl_write_bytes_per_second", round(rate, 1))
    if covers < v.t("backlog_seconds_min"):
        v.finding("redis.replication.backlog_small", W,
                  f"The replication backlog holds only {covers:.0f}s of writes",
                  {"repl_backlog_size": size, "write_bytes_per_second": round(rate, 1),
                   "backlog_seconds": round(covers, 1),
                   "threshold_seconds": v.t("backlog_seconds_min")},
                  "Raise repl-backlog-size so that a replica reconnecting within a minute "
                  "resyncs partially, not fully.")
