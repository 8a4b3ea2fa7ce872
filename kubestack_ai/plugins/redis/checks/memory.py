"""Memory: usage against maxmemory, fragmentation, evictions, policy, MEMORY DOCTOR."""

from __future__ import annotations

from ...models import Severity
from ..constants import MB
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
    _doctor(v, used)


def _keyspace(v: NodeView) -> tuple[int, int]:
    keys = expires = 0
    for name, db in v.info.items():
        if name.startswith("db") and isinstance(db, dict):
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
        if pct > warn:
            # an evicting policy at its limit is a cache doing its job (evictions are
            # judged on their own); with noeviction, writes are about to fail
            sev = C if pct > crit and policy == "noeviction" else W
            v.finding("redis.memory.usage_high", sev,
                      f"Memory usage {pct:.1f}% of maxmemory",
                      {**ev, "threshold_pct": crit if sev is C else warn},
                      "Raise maxmemory, shrink the data set (TTLs, smaller values) or shard.")
        if policy == "noeviction" and pct > warn:
            v.finding("redis.memory.noeviction_near_limit", C if pct > crit else W,
                      "maxmemory-policy noeviction near the limit: writes will fail with OOM",
                      {**ev, "threshold_pct": crit if pct > crit else warn},
                      "Choose an eviction policy (allkeys-lru for a cache) or raise maxmemory.")
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
    ev = {"mem_fragmentation_ratio": ratio, "used_memory": used, "used_memory_rss": rss}
    if ratio < v.t("fragmentation_ratio_min"):
        v.finding("redis.memory.swapping", W,
                  f"Fragmentation ratio {ratio} < {v.t('fragmentation_ratio_min'):g}: "
                  "part of the data set is swapped out",
                  {**ev, "threshold": v.t("fragmentation_ratio_min")},
                  "Free host memory or lower maxmemory; swapped Redis answers in milliseconds.")
    elif ratio > v.t("fragmentation_ratio_max") and waste > v.t("doctor_bytes_min"):
        v.finding("redis.memory.fragmentation_high", W,
                  f"Fragmentation ratio {ratio} > {v.t('fragmentation_ratio_max'):g}",
                  {**ev, "fragmentation_bytes": waste,
                   "threshold": v.t("fragmentation_ratio_max")},
                  "Enable activedefrag (jemalloc) or restart a replica and fail over to it.")


def _evictions(v: NodeView, policy: str, maxmem: int) -> None:
    evicted = int(v.i("evicted_keys"))
    if evicted <= 0:
        return
    ev: dict[str, object] = {"evicted_keys": evicted, "maxmemory": maxmem,
                             "maxmemory_policy": policy}
    prev = v.previous("evicted_keys")
    if prev is not None:
        seconds, before = prev
        delta = evicted - int(before)
        ev.update(evicted_since_last_run=delta, seconds_since_last_run=round(seconds, 1))
        window = [int(x) for _, x in v.history("evicted_keys")] + [evicted]
        rising = len(window) >= 3 and all(b > a for a, b in zip(window, window[1:], strict=False))
        if delta > 0:
            rate = delta / seconds if seconds else 0.0
            ev["evictions_per_second"] = round(rate, 3)
            if rising:
                ev["rising_for_runs"] = len(window) - 1
            v.finding("redis.memory.evictions", W,
                      f"{delta} keys evicted since the last run"
                      + (f", rising in each of the last {len(window) - 1} runs" if rising else ""),
                      ev, "Raise maxmemory or cut the data set; evictions drop cached data.")
        else:
            v.finding("redis.memory.evictions", INFO,
                      f"{evicted} keys evicted since start, none since the last run", ev,
                      "Nothing to do now; watch the trend.")
        return
    v.finding("redis.memory.evictions", W, f"{evicted} keys evicted since start", ev,
              "Raise maxmemory or cut the data set; evictions drop cached data.")


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
