"""Persistence: RDB and AOF status, a recent usable backup, disk space, fsync delays."""

from __future__ import annotations

import os

from ...models import Severity
from ..view import NodeView
from .performance import latency_events

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO


def save_rules(save: str) -> list[tuple[int, int]]:
    """``"3600 1 300 100"`` -> [(3600, 1), (300, 100)]."""
    parts = save.split()
    try:
        return [(int(parts[i]), int(parts[i + 1])) for i in range(0, len(parts) - 1, 2)]
    except ValueError:
        return []


def check(v: NodeView) -> None:
    aof = int(v.i("aof_enabled"))
    save = v.config.get("save")
    rules = save_rules(save) if save is not None else []
    last_save = int(v.i("rdb_last_save_time"))
    now = int(v.data.fetched_at)
    age = max(now - last_save, 0) if last_save else None
    changes = int(v.i("rdb_changes_since_last_save"))
    for name, value in (("aof_enabled", aof), ("rdb_last_save_age_seconds", age),
                        ("rdb_changes_since_last_save", changes),
                        ("aof_delayed_fsync", v.i("aof_delayed_fsync"))):
        v.metric(name, value)
    v.metric("run_id", v.i("run_id", ""))

    if int(v.i("loading")):
        v.finding("redis.persistence.loading", W, "Redis is loading its data set from disk",
                  {"loading": 1, "loading_loaded_perc": v.i("loading_loaded_perc")},
                  "Commands fail with LOADING until it finishes; wait.")
    if v.i("rdb_last_bgsave_status", "ok") != "ok":
        v.finding("redis.persistence.rdb_save_failed", C, "The last background save failed",
                  {"rdb_last_bgsave_status": v.i("rdb_last_bgsave_status"),
                   "rdb_last_save_age_seconds": age, "rdb_changes_since_last_save": changes},
                  "Read the Redis log (disk full, permissions, fork failed: "
                  "vm.overcommit_memory=1); with stop-writes-on-bgsave-error writes fail.")
    if aof:
        if v.i("aof_last_write_status", "ok") != "ok":
            v.finding("redis.persistence.aof_write_failed", C, "The last AOF write failed",
                      {"aof_last_write_status": v.i("aof_last_write_status")},
                      "Check the disk holding the AOF (full, read-only, failing).")
        if v.i("aof_last_bgrewrite_status", "ok") != "ok":
            v.finding("redis.persistence.aof_rewrite_failed", W, "The last AOF rewrite failed",
                      {"aof_last_bgrewrite_status": v.i("aof_last_bgrewrite_status")},
                      "Read the Redis log; the AOF keeps growing until a rewrite succeeds.")
        _fsync(v)
    if not rules and not aof:
        if save is not None:
            v.finding("redis.persistence.disabled", INFO,
                      "Persistence is off (no save rules, no AOF): a restart loses every key",
                      {"save": save, "aof_enabled": 0},
                      "Fine for a pure cache; otherwise enable RDB snapshots or the AOF.")
        return
    if rules and age is not None:
        due = [(s, n) for s, n in rules if changes >= n and age > s * v.t("save_age_factor")]
        if due and v.i("rdb_last_bgsave_status", "ok") == "ok" and not int(v.i("rdb_bgsave_in_progress")):
            v.finding("redis.persistence.backup_stale", W,
                      f"Last snapshot is {age}s old with {changes} changes: the save policy "
                      "should have saved",
                      {"rdb_last_save_age_seconds": age, "rdb_changes_since_last_save": changes,
                       "save": save, "rules_due": [list(r) for r in due],
                       "factor": v.t("save_age_factor")},
                      "Check that background saves run (the bgsave action, the log); no "
                      "recent usable backup exists.")
    _disk(v)


def _fsync(v: NodeView) -> None:
    policy = v.config.get("appendfsync")
    # the suggestion names the policy only when the evidence shows it (CONFIG GET may
    # be refused): never "appendfsync None"
    setting = f"appendfsync {policy}" if policy else "the AOF's fsync policy"
    v.counter_finding("aof_delayed_fsync", "redis.persistence.aof_fsync_delayed",
                      "AOF fsyncs delayed by a slow disk",
                      {"appendfsync": policy} if policy else {},
                      f"LATENCY DOCTOR: the disk is too slow for {setting}; use a faster "
                      "disk or no-appendfsync-on-rewrite yes.")
    if policy == "always" and not _aof_waits_judged(v):
        v.finding("redis.persistence.appendfsync_always", INFO,
                  "appendfsync always: every write waits for the disk",
                  {"appendfsync": "always", "aof_enabled": 1},
                  "LATENCY DOCTOR: everysec loses at most a second of writes and does not "
                  "wait on the disk per write; keep always only if that second matters.")


def _aof_waits_judged(v: NodeView) -> bool:
    """The performance category judges this run's AOF latency events, and there are some:
    its one finding (redis.performance.aof_latency) names appendfsync always as the cause."""
    return "performance" in v.run.categories and any(
        str(e["event"]).startswith("aof") and "max_ms_in_window" in e for e in latency_events(v))


def _disk(v: NodeView) -> None:
    """Free space where snapshots go: only known when Redis runs on this host."""
    directory = v.config.get("dir")
    if not v.local or not directory or not os.path.isdir(directory):
        return
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    need = int(v.i("used_memory")) * v.t("disk_free_factor")
    v.metric("snapshot_disk_free_bytes", free)
    if free < need:
        v.finding("redis.persistence.disk_space_low", W,
                  f"{free // (1024 * 1024)} MB free in {directory}: a snapshot may not fit",
                  {"dir": directory, "free_bytes": free, "used_memory": int(v.i("used_memory")),
                   "factor": v.t("disk_free_factor")},
                  "Free disk space where Redis saves, or move dir to a bigger volume.")
