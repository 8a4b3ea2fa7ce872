"""Performance: throughput, hit rate, slow log, command statistics, LATENCY DOCTOR."""

from __future__ import annotations

from typing import Any

from ...models import Severity
from ...rates import iso_utc
from ..constants import ACL_NEEDED, ERROR_ADVICE, LATENCY_ADVICE, WARNED_ERRORS
from ..fetch import slow_args_addr, slow_entries, slow_entry
from ..view import NodeView

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO


def check(v: NodeView) -> None:
    for name in ("instantaneous_ops_per_sec", "total_commands_processed", "keyspace_hits",
                 "keyspace_misses", "total_error_replies", "latest_fork_usec"):
        v.metric(name, v.i(name))
    v.metric("run_id", v.i("run_id", ""))
    _ops_rate(v)
    _hit_rate(v)
    _slowlog(v)
    _commandstats(v)
    _latency_doctor(v)
    _error_replies(v)
    for what in ("slowlog", "latency", "config"):
        if what in v.data.errors:
            v.finding("redis.performance.permission_missing", INFO,
                      f"{what.upper()} commands refused: part of the performance checks skipped",
                      {"command": what, "error": v.data.errors[what], "acl": ACL_NEEDED[what]},
                      f"Grant the diagnostics user {ACL_NEEDED[what]}.")


def _ops_rate(v: NodeView) -> None:
    prev = v.previous("total_commands_processed")
    if prev is not None and prev[0] > 0:
        done = int(v.i("total_commands_processed")) - int(prev[1])
        if done >= 0:
            v.metric("ops_per_second_since_last_run", round(done / prev[0], 2))


def _hit_rate(v: NodeView) -> None:
    """The hit rate of the lookups within the window (rates.py: stored history, the
    server's uptime when it started within the window, else the in-run second reading).
    A lifetime ratio alone is a metric, never a finding: a cache warmed up weeks ago
    says nothing about now."""
    hits, misses = int(v.i("keyspace_hits")), int(v.i("keyspace_misses"))
    if hits + misses:
        v.metric("hit_rate_since_start", round(hits / (hits + misses), 4))
    rh, rm = v.rate("keyspace_hits"), v.rate("keyspace_misses")
    if rh.needs_sample or rm.needs_sample or rh.delta is None or rm.delta is None:
        return
    dh, dm = int(rh.delta), int(rm.delta)
    lookups = dh + dm
    if not lookups:
        return
    rate = dh / lookups
    v.metric("hit_rate", round(rate, 4))
    if lookups >= v.t("hit_rate_min_lookups") and rate < v.t("hit_rate_min"):
        window = rh.window_text()
        v.finding("redis.performance.hit_rate_low", W,
                  f"Keyspace hit rate {rate:.1%} {window}",
                  {"keyspace_hits": dh, "keyspace_misses": dm, "hit_rate": round(rate, 4),
                   "window": window, "window_seconds": round(rh.seconds or 0.0, 1),
                   "window_source": rh.source, "keyspace_hits_since_start": hits,
                   "keyspace_misses_since_start": misses, "threshold": v.t("hit_rate_min")},
                  "Keys are read before they are written or after they expired/were "
                  "evicted: check TTLs, evictions and the client's key names.")


def _slowlog(v: NodeView) -> None:
    newest = next(slow_entries(v.data.slowlog), None)
    if newest is None:
        v.metric("slowlog_recent", 0)
        return
    # SLOWLOG GET answers newest first, and an entry's id is one more than the entry
    # before it (SLOWLOG RESET does not restart them): the first id is the highest
    v.metric("slowlog_last_id", int(newest[0]))
    prev = v.previous("slowlog_last_id")
    # read entries only until the first one that is not recent (on a quiet server,
    # none; the fleet's usual case)
    if prev is not None:
        count, by_cmd, by_client, slowest_raw = _recent_slow(v.data.slowlog, after_id=int(prev[1]))
        window = "since the last run"
    else:
        since = v.data.fetched_at - v.t("slowlog_window_seconds")
        count, by_cmd, by_client, slowest_raw = _recent_slow(v.data.slowlog, since=since)
        window = f"in the last {v.t('slowlog_window_seconds'):g}s"
    v.metric("slowlog_recent", count)
    if slowest_raw is None:
        return
    top_n = int(v.t("top_n"))
    slowest = slow_entry(slowest_raw)
    command = " ".join(str(a) for a in slowest[3])
    max_ms = slowest[2] / 1000.0
    sev = W if (max_ms > v.t("slowlog_ms_warning")
                or count >= v.t("slowlog_count_warning")) else INFO
    top = sorted(by_cmd.items(), key=lambda kv: -kv[1][2])[:top_n]
    v.finding("redis.performance.slow_commands", sev,
              f"{count} slow commands {window}, the slowest {max_ms:.1f} ms "
              f"({command[:60]})",
              {"count": count, "window": window, "max_ms": max_ms,
               "slowest": {"command": command[:200], "duration_ms": max_ms,
                           "client": slowest[4], "at": slowest[1]},
               "by_command": {k: {"count": c, "max_ms": round(mx / 1000.0, 3),
                                  "total_ms": round(t / 1000.0, 3)}
                              for k, (c, mx, t) in top},
               "by_client": dict(sorted(by_client.items(), key=lambda kv: -kv[1])[:top_n]),
               "threshold_ms": v.t("slowlog_ms_warning"),
               "threshold_count": v.t("slowlog_count_warning")},
              "Replace O(N) commands on big keys (KEYS -> SCAN, HGETALL -> HSCAN, big DEL -> "
              "UNLINK) and find the callers named in by_client; slowlog_reset afterwards.")


def _recent_slow(raw: list[Any], *, after_id: int | None = None, since: float = 0.0,
                 ) -> tuple[int, dict[str, list[int]], dict[str, int], list[Any] | None]:
    """One pass over SLOWLOG GET's entries (newest first) while they are recent: newer
    than ``after_id`` (the last run's newest), else logged at or after ``since``. Returns
    (count, {command: [count, max usec, total usec]}, {client host: count}, the raw
    entry of the slowest, the newest of equals; None when none is recent)."""
    by_cmd: dict[str, list[int]] = {}
    by_client: dict[str, int] = {}
    count, top, slowest = 0, -1, None
    for e in slow_entries(raw):
        if after_id is not None:
            if int(e[0]) <= after_id:
                break
        elif int(e[1]) < since:
            break
        count += 1
        usec = int(e[2])
        args, addr = slow_args_addr(e)
        name = str(args[0]).upper() if args else "?"
        s = by_cmd.get(name)
        if s is None:
            by_cmd[name] = [1, usec, usec]
        else:
            s[0] += 1
            if usec > s[1]:
                s[1] = usec
            s[2] += usec
        host = addr.rpartition(":")[0] or "?"
        by_client[host] = by_client.get(host, 0) + 1
        if usec > top:
            top, slowest = usec, e
    return count, by_cmd, by_client, slowest


def _commandstats(v: NodeView) -> None:
    stats = []
    for name, s in v.dict_fields():
        if name.startswith("cmdstat_"):
            stats.append((name[8:], int(s.get("calls", 0)), int(s.get("usec", 0)),
                          float(s.get("usec_per_call", 0.0))))
    if not stats:
        return
    top_n = int(v.t("top_n"))
    by_total = sorted(stats, key=lambda s: -s[2])[:top_n]
    v.metric("commands_by_total_usec", {n: {"calls": c, "usec": u, "usec_per_call": p}
                                         for n, c, u, p in by_total})
    min_calls, slow_usec = v.t("command_min_calls"), v.t("usec_per_call_warning")
    costly = [s for s in stats if s[1] >= min_calls and s[3] > slow_usec]
    if costly:
        costly.sort(key=lambda s: -s[3])
        v.finding("redis.performance.expensive_commands", W,
                  f"{len(costly)} commands average over {v.t('usec_per_call_warning') / 1000:g} ms "
                  f"a call (worst: {costly[0][0]} {costly[0][3] / 1000:.1f} ms)",
                  {"commands": {n: {"calls": c, "usec_per_call": p} for n, c, _, p in costly[:top_n]},
                   "threshold_usec": v.t("usec_per_call_warning"),
                   "min_calls": v.t("command_min_calls")},
                  "Find these calls in the slow log and bound their work (SCAN, smaller keys).")
    keys_calls = next((c for n, c, _, _ in stats if n == "keys"), 0)
    if keys_calls:
        v.finding("redis.performance.keys_command_used", INFO,
                  f"KEYS was called {keys_calls} times: it blocks Redis while it walks every key",
                  {"calls": keys_calls}, "Use SCAN instead of KEYS in applications.")


def _latency_doctor(v: NodeView) -> None:
    """LATENCY DOCTOR's rules (redis src/latency.c), as findings."""
    cfg = v.config
    slower = int(cfg.get("slowlog-log-slower-than", 0) or 0)
    monitor = int(cfg.get("latency-monitor-threshold", 0) or 0)
    if cfg and slower < 0:
        v.finding("redis.performance.slowlog_disabled", W, "The slow log is disabled",
                  {"slowlog-log-slower-than": slower},
                  "CONFIG SET slowlog-log-slower-than 10000 (10 ms) to see slow commands.")
    elif cfg and monitor > 0 and slower > monitor * 1000:
        v.finding("redis.performance.slowlog_threshold_high", INFO,
                  "The slow log threshold is above latency-monitor-threshold",
                  {"slowlog-log-slower-than_usec": slower, "latency-monitor-threshold_ms": monitor},
                  f"Set slowlog-log-slower-than to {monitor * 1000} so the slow log shows "
                  "what the latency monitor sees.")
    if cfg and monitor <= 0:
        v.finding("redis.performance.latency_monitor_disabled", INFO,
                  "The latency monitor is off: latency spikes are not recorded",
                  {"latency-monitor-threshold": monitor},
                  "CONFIG SET latency-monitor-threshold 100 (ms), as LATENCY DOCTOR advises.")
    _latency_events(v)
    fork_usec = int(v.i("latest_fork_usec"))
    fork_event = any(e and e[0] == "fork" for e in v.data.latency)
    if fork_usec > 0 and (fork_event or fork_usec >= v.t("fork_usec_min")):
        used = int(v.i("used_memory"))
        rate = used * 1_000_000 / fork_usec / (1024 ** 3)
        v.metric("fork_rate_gb_per_second", round(rate, 3))
        if rate < v.t("fork_rate_gb_poor"):
            terrible = rate < v.t("fork_rate_gb_terrible")
            v.finding("redis.performance.fork_slow", W,
                      f"Fork rate {rate:.2f} GB/s is {'terrible' if terrible else 'poor'} "
                      f"({fork_usec / 1000:.1f} ms for the last fork)",
                      {"latest_fork_usec": fork_usec, "used_memory": used,
                       "fork_rate_gb_per_second": round(rate, 3),
                       "threshold_terrible": v.t("fork_rate_gb_terrible"),
                       "threshold_poor": v.t("fork_rate_gb_poor")},
                      LATENCY_ADVICE["fork"])
    _thp(v)


def _error_replies(v: NodeView) -> None:
    """INFO errorstats (the exporter's redis_errors_total): one finding per error prefix,
    judged as a rate; refusals of work (OOM, MISCONF, NOAUTH...) warn while they rise."""
    for name, value in sorted(v.counters().items()):
        if not name.startswith("errorstat_") or not value:
            continue
        prefix = name.removeprefix("errorstat_")
        v.metric(name, value)
        v.counter_finding(name, "redis.performance.error_replies", f"{prefix} error replies",
                          {"error": prefix},
                          ERROR_ADVICE.get(prefix, f"Find the clients getting {prefix} "
                                           "errors (their logs) and fix the commands."),
                          moving=W if prefix in WARNED_ERRORS else INFO)


def _latency_events(v: NodeView) -> None:
    """LATENCY LATEST + HISTORY: an event's samples inside the window are judged (count,
    average, worst); one older than the window is history, worth an info at most. The
    AOF's events are one cause (a disk the writes wait on): one finding lists them."""
    limit = v.t("latency_event_ms_warning")
    aof = []
    for ev in latency_events(v):
        event, recent = str(ev["event"]), ev.get("max_ms_in_window")
        advice = LATENCY_ADVICE.get(event, f"See LATENCY HISTORY {event}.")
        if event.startswith("aof") and recent is not None:
            aof.append(ev)
        elif recent is not None and recent >= limit:
            v.finding("redis.performance.latency_spike", W,
                      f"Latency event {event}: {ev['count_in_window']} in the last "
                      f"{v.t('rate_window_seconds'):g}s, up to {recent} ms", ev, advice)
        elif recent is None and int(ev["max_ms_since_reset"]) >= limit:
            v.finding("redis.performance.latency_spike", INFO,
                      f"Latency event {event}: up to {ev['max_ms_since_reset']} ms, the last "
                      f"at {ev['latest_at']} (none in the window)", ev,
                      "History, not a current problem; LATENCY RESET clears it.")
    if aof:
        _aof_latency(v, aof, limit)


def latency_events(v: NodeView) -> list[dict[str, Any]]:
    """Each LATENCY LATEST event with its samples in the window (``count_in_window``,
    ``avg_ms_in_window``, ``max_ms_in_window``), once per node and run."""
    def make() -> list[dict[str, Any]]:
        since = v.data.fetched_at - v.t("rate_window_seconds")
        out: list[dict[str, Any]] = []
        for event, at, latest, worst in (e[:4] for e in v.data.latency if len(e) >= 4):
            samples = v.data.latency_history.get(str(event)) or [(int(at), int(latest))]
            recent = [ms for ts, ms in samples if ts >= since]
            ev: dict[str, Any] = {
                "event": str(event), "latest_at": iso_utc(int(at)), "latest_ms": int(latest),
                "max_ms_since_reset": int(worst), "window_seconds": v.t("rate_window_seconds"),
                "count_in_window": len(recent), "samples_since_reset": len(samples),
                "threshold_ms": v.t("latency_event_ms_warning")}
            if recent:
                ev.update(avg_ms_in_window=round(sum(recent) / len(recent), 1),
                          max_ms_in_window=max(recent))
            out.append(ev)
        return out
    return v.memo("latency_events", make)


def _aof_latency(v: NodeView, events: list[dict[str, Any]], limit: float) -> None:
    """The monitor records only events above its threshold: AOF waits below our 100 ms
    still mean a disk the AOF waits on (LATENCY DOCTOR's advice). One finding for the
    cause, every AOF event in its evidence; with appendfsync always, that is the cause."""
    events = sorted(events, key=lambda e: -int(e["count_in_window"]))
    count = sum(int(e["count_in_window"]) for e in events)
    worst = max(int(e["max_ms_in_window"]) for e in events)
    policy = v.config.get("appendfsync")
    many = count >= v.t("aof_latency_events_warning") or worst >= limit
    names = ", ".join(str(e["event"]) for e in events)
    if policy == "always":
        advice = ("appendfsync always makes every write wait for the disk: CONFIG SET "
                  "appendfsync everysec (at most a second of writes lost on a crash), or "
                  "put the AOF on a faster disk if that second matters.")
    else:
        advice = " ".join(dict.fromkeys(LATENCY_ADVICE.get(str(e["event"]),
                                                           f"See LATENCY HISTORY {e['event']}.")
                                        for e in events))
    v.finding("redis.performance.aof_latency", W if many else INFO,
              f"The AOF waits on the disk: {count} latency events ({names}) in the last "
              f"{v.t('rate_window_seconds'):g}s, up to {worst} ms"
              + (" with appendfsync always" if policy == "always" else ""),
              {"events": events, "count_in_window": count, "max_ms_in_window": worst,
               "appendfsync": policy, "threshold_events": v.t("aof_latency_events_warning"),
               "threshold_ms": limit}, advice)


def _thp(v: NodeView) -> None:
    """Transparent huge pages in use by the server process: only readable on this host."""
    pid = v.i("process_id", 0)
    if not v.local or not pid:
        return
    kb = _anon_huge_pages_kb(int(pid), v.data.fetched_at)
    if kb > 0:
        v.finding("redis.performance.transparent_huge_pages", W,
                  f"The Redis process uses {kb} kB of transparent huge pages",
                  {"anon_huge_pages_kb": kb, "process_id": pid},
                  "echo never > /sys/kernel/mm/transparent_hugepage/enabled and restart Redis: "
                  "huge pages make forks and copy-on-write slow.")


_THP_CACHE: dict[int, tuple[float, int]] = {}
THP_CACHE_SECONDS = 60.0


def _anon_huge_pages_kb(pid: int, now: float) -> int:
    """AnonHugePages of a local redis-server process; cached a minute per pid, because
    the kernel walks every mapping to answer smaps_rollup (it would double a diagnosis)."""
    hit = _THP_CACHE.get(pid)
    if hit is not None and now - hit[0] < THP_CACHE_SECONDS:
        return hit[1]
    kb = 0
    try:
        with open(f"/proc/{pid}/comm", encoding="ascii") as fh:
            is_redis = fh.read().startswith("redis")
        if is_redis:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
                kb = next((int(line.split()[1]) for line in fh
                           if line.startswith("AnonHugePages:")), 0)
    except (OSError, ValueError):
        kb = 0
    if len(_THP_CACHE) > 1024:
        _THP_CACHE.clear()
    _THP_CACHE[pid] = (now, kb)
    return kb
