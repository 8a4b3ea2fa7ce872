"""Memory: usage against maxmemory, fragmentation, evictions, policy, MEMORY DOCTOR."""

from __future__ import annotations

from ...models import Severity
from ...rates import iso_utc
from ..constants import MB
from ..keyscan import STATE_METRIC, KeySample, biggest, coverage_pct, remember
from ..view import NodeView

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO


def check(v: NodeView) -> None:
    used = int(v.i("used_memory"))
    rss = int(v.i("used_memory_rss"))
    maxmem = int(v.i("maxmemory"))
    system = int(v.i("total_system_memory"))
    policy = str(v.i("maxmemory_policy", "noeviction"))
    for name in ("used_memory", "used_memory_rss", "used_memory_peak", "maxmemory",
                 "mem_fragmentation_ratio", "evicted_keys", "expired_keys"):
        v.metric(name, v.i(name))
    keys, expires = _keyspace(v)
    v.metric("keys", keys)
    v.metric("run_id", v.i("run_id", ""))

    _usage(v, used, rss, maxmem, system, policy, expires)
    _fragmentation(v, used, rss)
    _evictions(v, policy, maxmem)
    _expired_not_reclaimed(v, keys, expires)
    _big_keys(v)
    _doctor(v, used)


def _keyspace(v: NodeView) -> tuple[int, int]:
    keys = expires = 0
    for name, db in v.dict_fields():
        if name.startswith("db"):
            keys += int(db.get("keys", 0))
            expires += int(db.get("expires", 0))
    return keys, expires


def _usage(v: NodeView, used: int, rss: int, maxmem: int, system: int, policy: str,
           expires: int) -> None:
    if maxmem > 0:
        pct = 100.0 * used / maxmem
        v.metric("memory_usage_pct", round(pct, 2))
        warn, crit = v.t("memory_usage_pct_warning"), v.t("memory_usage_pct_critical")
        ev = {"used_memory": used, "maxmemory": maxmem, "usage_pct": round(pct, 2),
              "maxmemory_policy": policy}
        if pct > warn and policy == "noeviction":
            # one cause, one finding: at the limit writes fail with OOM (the count of
            # refused writes so far, and their rate, is the evidence that they already do)
            sev = C if pct > crit else W
            oom = v.rate("errorstat_OOM")
            v.finding("redis.memory.noeviction_near_limit", sev,
                      f"Memory usage {pct:.1f}% of maxmemory with noeviction: writes "
                      + ("are failing with OOM" if oom.moving else "will fail with OOM"),
                      {**ev, "threshold_pct": crit if sev is C else warn,
                       **oom.evidence("oom_rejections")},
                      "Choose an eviction policy (allkeys-lru for a cache), raise maxmemory "
                      "or shrink the data set (TTLs, smaller values).")
        elif pct > warn:
            # an evicting policy at its limit is a cache doing its job (evictions are
            # judged on their own, as a rate)
            v.finding("redis.memory.usage_high", W,
                      f"Memory usage {pct:.1f}% of maxmemory",
                      {**ev, "threshold_pct": warn},
                      "Raise maxmemory, shrink the data set (TTLs, smaller values) or shard.")
        if policy.startswith("volatile-") and expires == 0:
            v.finding("redis.memory.volatile_policy_no_ttl", W,
                      f"maxmemory-policy {policy} but no key has a TTL: nothing can be evicted",
                      {"maxmemory_policy": policy, "keys_with_ttl": 0},
                      "Set TTLs on cache keys or use an allkeys-* policy.")
    elif system > 0:
        pct = 100.0 * max(used, rss) / system
        ev = {"used_memory": used, "used_memory_rss": rss, "total_system_memory": system,
              "system_pct": round(pct, 2)}
        if pct > v.t("system_memory_pct_critical"):
            v.finding("redis.memory.system_memory_high", C,
                      f"No maxmemory and Redis holds {pct:.1f}% of the host's memory",
                      {**ev, "threshold_pct": v.t("system_memory_pct_critical")},
                      "Set maxmemory below the host's memory now: the OOM killer is next.")
        elif pct > v.t("unbounded_memory_pct_warning"):
            v.finding("redis.memory.maxmemory_unset", W,
                      f"No maxmemory set and Redis holds {pct:.1f}% of the host's memory",
                      {**ev, "threshold_pct": v.t("unbounded_memory_pct_warning")},
                      "Set maxmemory (and a maxmemory-policy) to leave room for forks and the OS.")
        else:
            v.finding("redis.memory.maxmemory_unset", INFO,
                      "No maxmemory set: Redis can grow until the host runs out of memory",
                      ev, "Set maxmemory and a maxmemory-policy that suits the data.")


def _fragmentation(v: NodeView, used: int, rss: int) -> None:
    ratio = float(v.i("mem_fragmentation_ratio", 0))
    if used < v.t("doctor_min_bytes") or ratio <= 0:
        return  # ratios of an almost empty instance mean nothing (MEMORY DOCTOR: < 5 MB)
    waste = int(v.i("mem_fragmentation_bytes", rss - used))
    ev: dict[str, object] = {"mem_fragmentation_ratio": ratio, "used_memory": used,
                             "used_memory_rss": rss}
    if ratio < v.t("fragmentation_ratio_min"):
        _swapping(v, ratio, used, rss, ev)
    elif ratio > v.t("fragmentation_ratio_max") and waste > v.t("doctor_bytes_min"):
        v.finding("redis.memory.fragmentation_high", W,
                  f"Fragmentation ratio {ratio} > {v.t('fragmentation_ratio_max'):g}",
                  {**ev, "fragmentation_bytes": waste,
                   "threshold": v.t("fragmentation_ratio_max")},
                  "Enable activedefrag (jemalloc) or restart a replica and fail over to it.")


def _swapping(v: NodeView, ratio: float, used: int, rss: int, ev: dict[str, object]) -> None:
    """RSS below the data: swapped out, or an RSS Redis has not refreshed yet (it reads
    it periodically). MEMORY DOCTOR's guard (10 MB either way) and a second reading."""
    if max(used, rss) < v.t("swap_min_bytes") or used - rss < v.t("swap_min_bytes"):
        return
    second = v.data.second
    if second is None:
        return  # no second reading (deadline): one stale RSS must not warn
    ratio2 = float(second.get("mem_fragmentation_ratio", 0))
    if not 0 < ratio2 < v.t("fragmentation_ratio_min"):
        return  # the first RSS was stale
    v.finding("redis.memory.swapping", W,
              f"Fragmentation ratio {ratio} (then {ratio2}) < "
              f"{v.t('fragmentation_ratio_min'):g}: part of the data set is swapped out",
              {**ev, "mem_fragmentation_ratio_second": ratio2,
               "threshold": v.t("fragmentation_ratio_min"),
               "threshold_bytes": v.t("swap_min_bytes")},
              "Free host memory or lower maxmemory; swapped Redis answers in milliseconds.")


def _evictions(v: NodeView, policy: str, maxmem: int) -> None:
    v.counter_finding("evicted_keys", "redis.memory.evictions", "keys evicted",
                      {"maxmemory": maxmem, "maxmemory_policy": policy},
                      "Raise maxmemory or cut the data set; evictions drop cached data.")


def _expired_not_reclaimed(v: NodeView, keys: int, expires: int) -> None:
    """Logically expired keys that still hold memory: Redis's own estimate
    (expired_stale_perc, from active expiry's samples) and ours (what our bounded scan
    reclaimed, less the background expiry over the same time)."""
    sample = v.data.keys
    stale_perc = float(v.i("expired_stale_perc", 0))
    v.metric("expired_stale_perc", stale_perc)
    if not keys or expires / keys < v.t("expires_share_min"):
        return
    ev: dict[str, object] = {
        "keys": keys, "keys_with_ttl": expires, "expired_stale_perc": stale_perc,
        "expired_time_cap_reached_count": int(v.i("expired_time_cap_reached_count")),
        "expire_cycle_cpu_milliseconds": int(v.i("expire_cycle_cpu_milliseconds")),
        "threshold_pct": v.t("expired_stale_pct_warning")}
    for setting in ("hz", "active-expire-effort"):  # the settings the suggestion names
        if v.config.get(setting):
            ev[setting] = v.config[setting]
    estimate = stale_perc
    # SCAN returns no expired key: a scan that met only expired ones counted no live
    # key, and its reclaims alone are the estimate (100%)
    if sample is not None and not sample.error and (sample.scanned
                                                    or sample.expired_during_scan > 0):
        rate = v.rate("expired_keys")
        background = (rate.per_second or 0.0) * sample.seconds
        reclaimed = max(sample.expired_during_scan - background, 0.0)
        met = sample.scanned + reclaimed
        sampled_pct = 100.0 * reclaimed / met if met else 0.0
        ev.update(scan_keys=sample.scanned, scan_expired_reclaimed=round(reclaimed),
                  scan_stale_pct=round(sampled_pct, 1), **rate.evidence())
        v.metric("expired_stale_pct_sampled", round(sampled_pct, 1))
        estimate = max(estimate, sampled_pct)
    if estimate > v.t("expired_stale_pct_warning"):
        v.finding("redis.memory.expired_not_reclaimed", W,
                  f"About {estimate:.0f}% of the keys with a TTL are expired but still "
                  "hold memory", ev,
                  "Active expiry is not keeping up: raise hz (e.g. 50) or "
                  "active-expire-effort, and check that nothing blocks the event loop "
                  "(slow commands, a replica that never expires keys on its own).")


def _big_keys(v: NodeView) -> None:
    """The biggest keys of this run's share of the keyspace walk, and the big keys found
    by earlier runs measured again (redis-cli --memkeys / --bigkeys, over runs)."""
    sample = v.data.keys
    if sample is None:
        return
    v.metric("keys_sampled", sample.scanned)
    top_n = int(v.t("top_n"))
    by_bytes, by_elements = biggest(sample, top_n)
    big = [k for k in by_bytes if k.bytes >= v.t("bigkeys_bytes_warning")]
    long = [k for k in by_elements if k.elements >= v.t("bigkeys_elements_warning")]
    cover = coverage_pct(sample)
    base: dict[str, object] = {"keys_sampled": sample.scanned, "complete_scan": sample.complete,
                               "scan_seconds": round(sample.seconds, 3),
                               "coverage_pct": round(cover, 1), "keys": sample.dbsize,
                               "known_big_keys_remeasured": sample.remeasured}
    state = sample.state
    if state is not None:
        remember(state, [*big, *long])
        v.metric(STATE_METRIC, state.encode())
        v.metric("bigkeys_coverage_pct", round(cover, 1))
        base["covered_since"] = iso_utc(state.pass_started)
        if state.last_complete is not None and state.last_complete_started is not None:
            base["last_full_pass"] = {"started": iso_utc(state.last_complete_started),
                                      "completed": iso_utc(state.last_complete)}
    if sample.error:
        v.finding("redis.memory.bigkeys_incomplete", INFO,
                  "The big-keys sample stopped early", {**base, "error": sample.error},
                  "Grant the diagnostics user +scan +type +memory|usage and the length "
                  "commands (+strlen +llen +scard +zcard +hlen +xlen).")
    if big or long:
        first = (big or long)[0]
        size = (f"{first.bytes / MB:.1f} MB" if big else f"{first.elements} elements")
        v.finding("redis.memory.big_keys", W,
                  f"Big key {first.key!r} ({first.type}, {size})" + _coverage_text(sample, cover),
                  {**base, "by_bytes": [k.as_evidence() for k in big],
                   "by_elements": [k.as_evidence() for k in long],
                   "threshold_bytes": v.t("bigkeys_bytes_warning"),
                   "threshold_elements": v.t("bigkeys_elements_warning")},
                  "Split the keys named in by_bytes/by_elements (hash buckets, "
                  "time-sliced keys); delete them with UNLINK, never DEL, to avoid a stall.")
    elif by_bytes:
        v.metric("biggest_keys", [k.as_evidence() for k in by_bytes])


def _coverage_text(sample: KeySample, cover: float) -> str:
    if sample.complete:
        return ""
    state = sample.state
    if state is None:
        return f" among {sample.scanned} keys sampled"
    if state.cursor == 0 and state.last_complete is not None:
        return f"; the whole keyspace walked since {iso_utc(state.pass_started)}"
    return f"; {cover:.0f}% of the keyspace walked since {iso_utc(state.pass_started)}"


def _doctor(v: NodeView, used: int) -> None:
    """MEMORY DOCTOR's rules (redis src/object.c), as findings."""
    if used < v.t("doctor_min_bytes"):
        return
    min_bytes = v.t("doctor_bytes_min")
    peak = int(v.i("used_memory_peak"))
    if peak > v.t("peak_ratio_max") * used:
        v.finding("redis.memory.peak_high", INFO,
                  f"Peak memory {peak // MB} MB is {peak / used:.1f}x the current use",
                  {"used_memory_peak": peak, "used_memory": used,
                   "threshold_ratio": v.t("peak_ratio_max")},
                  "The RSS may stay at the peak: check the fragmentation, or restart a replica.")
    rules = (("allocator_frag_ratio", "allocator_frag_bytes", "allocator_frag_ratio_max",
              "redis.memory.allocator_fragmentation", "Enable activedefrag yes (jemalloc)."),
             ("allocator_rss_ratio", "allocator_rss_bytes", "allocator_rss_ratio_max",
              "redis.memory.allocator_rss_overhead",
              "The allocator keeps freed pages: MEMORY PURGE (the memory_purge action)."),
             ("rss_overhead_ratio", "rss_overhead_bytes", "rss_overhead_ratio_max",
              "redis.memory.rss_overhead",
              "Memory outside the allocator (forks, libraries): check for a child process."))
    for ratio_f, bytes_f, limit, code, advice in rules:
        ratio, waste = float(v.i(ratio_f)), int(v.i(bytes_f))
        if ratio > v.t(limit) and waste > min_bytes:
            v.finding(code, W, f"{ratio_f} {ratio} with {waste // MB} MB lost",
                      {ratio_f: ratio, bytes_f: waste, "threshold_ratio": v.t(limit),
                       "threshold_bytes": min_bytes}, advice)
    clients = max(int(v.i("connected_clients")) - int(v.i("connected_slaves")), 1)
    avg = int(v.i("mem_clients_normal")) / clients
    if avg > v.t("client_buffer_avg_bytes_max"):
        v.finding("redis.memory.client_buffers_high", W,
                  f"Client buffers average {avg / 1024:.0f} KB per client",
                  {"mem_clients_normal": int(v.i("mem_clients_normal")), "clients": clients,
                   "threshold_bytes": v.t("client_buffer_avg_bytes_max")},
                  "Find clients with big output buffers (CLIENT LIST omem): big replies, "
                  "slow pub/sub consumers, MONITOR; set client-output-buffer-limit.")
    replica_buf = int(v.i("mem_clients_slaves"))
    if replica_buf > v.t("replica_buffers_bytes_max"):
        v.finding("redis.memory.replica_buffers_high", W,
                  f"Replica output buffers hold {replica_buf // MB} MB",
                  {"mem_clients_slaves": replica_buf,
                   "threshold_bytes": v.t("replica_buffers_bytes_max")},
                  "Replicas lag behind the writes: check the network and the replicas' load.")
    scripts = int(v.i("number_of_cached_scripts"))
    if scripts > v.t("cached_scripts_max"):
        v.finding("redis.memory.cached_scripts_high", W, f"{scripts} Lua scripts cached",
                  {"number_of_cached_scripts": scripts, "threshold": v.t("cached_scripts_max")},
                  "Scripts are generated per call: parametrise them (KEYS/ARGV) and SCRIPT FLUSH.")
