"""Issue 12's Redis findings against servers of our own, each fault seeded for real and
each with the healthy look-alike that must stay quiet: big keys by a bounded scan
(item 7), appendfsync always and AOF latency below the spike threshold (item 8), INFO
errorstats as rates (item 9), expired keys not reclaimed (item 10), and suggestions that
only use what their finding shows (item 17)."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from kubestack_ai.plugins import DiagnoseOptions, Severity, Snapshot
from kubestack_ai.plugins.models import utcnow

from .util import Servers, codes, target, wait_for

MEMORY = DiagnoseOptions(categories=("memory",))
PERF = DiagnoseOptions(categories=("performance",))


# -- item 7: big keys ---------------------------------------------------------------------

def test_big_keys_named_with_their_size(servers: Servers, manager) -> None:
    srv = servers.start()
    with srv.client() as c:
        pipe = c.pipeline(transaction=False)
        for i in range(300):
            pipe.set(f"small:{i}", "v" * 50)
        pipe.execute()
        c.set("blob", "x" * (2 * 1024 * 1024))
        c.rpush("queue", *range(5000))
    t = target(srv.addr, thresholds={"bigkeys_bytes_warning": 1024 * 1024,
                                     "bigkeys_elements_warning": 1000})
    r = manager.diagnose(t, MEMORY)
    f = codes(r)["redis.memory.big_keys"]
    assert f.severity is Severity.WARNING and "'blob'" in f.title and " MB)" in f.title
    assert f.evidence["complete_scan"] is True and f.evidence["keys_sampled"] == 302
    assert [k["key"] for k in f.evidence["by_bytes"]] == ["blob"]
    assert f.evidence["by_bytes"][0]["bytes"] >= 2 * 1024 * 1024
    assert [(k["key"], k["elements"]) for k in f.evidence["by_elements"]] == [("queue", 5000)]
    assert "by_bytes" in f.suggestion and "UNLINK" in f.suggestion

    # the look-alike: the same keyspace judged at the default thresholds (10 MB, 1M
    # elements) is quiet, and the biggest keys are still listed as a metric
    r = manager.diagnose(target(srv.addr), MEMORY)
    assert "redis.memory.big_keys" not in codes(r)
    assert r.metrics["biggest_keys"][0]["key"] == "blob"


def test_big_keys_scan_is_bounded(servers: Servers, manager) -> None:
    srv = servers.start()
    with srv.client() as c:
        c.execute_command("DEBUG", "POPULATE", "20000", "k", "10") if _debug(c) else None
        if c.dbsize() < 20000:
            pipe = c.pipeline(transaction=False)
            for i in range(20000):
                pipe.set(f"k:{i}", "v")
            pipe.execute()
    # a one-off run walks a keyspace up to bigkeys_full_scan_keys whole: 20,000 is above
    t = target(srv.addr, thresholds={"bigkeys_scan_keys": 500, "bigkeys_full_scan_keys": 10_000})
    t0 = time.monotonic()
    r = manager.diagnose(t, MEMORY)
    assert time.monotonic() - t0 < 2.0
    # a sample, said to be one: never a full walk of the keyspace
    assert 500 <= r.metrics["keys_sampled"] < 1000
    assert "redis.memory.big_keys" not in codes(r)


def _debug(c) -> bool:  # type: ignore[no-untyped-def]
    try:
        c.execute_command("DEBUG", "HELP")
        return True
    except Exception:  # DEBUG is disabled by default (enable-debug-command no)
        return False


# -- item 8: appendfsync always, AOF latency below 100 ms ---------------------------------

def test_appendfsync_always_and_aof_latency_events(servers: Servers, manager) -> None:
    srv = servers.start("--appendonly", "yes", "--appendfsync", "always",
                        "--latency-monitor-threshold", "1")

    def aof_event() -> bool:
        with srv.client() as c:
            for i in range(100):
                c.set(f"w{i}", i)  # one fsync per write
            return any(str(e[0]).startswith("aof") for e in c.execute_command("LATENCY LATEST"))

    wait_for(aof_event, 10, "an AOF latency event (fsync over 1 ms)", every=0)
    r = manager.diagnose(target(srv.addr), DiagnoseOptions(
        categories=("persistence", "performance")))
    found = codes(r)
    # one finding for the cause (issue 24 item 8): the events in its evidence
    assert "redis.persistence.appendfsync_always" not in found
    aof = found["redis.performance.aof_latency"]
    assert aof.evidence["appendfsync"] == "always" and aof.evidence["count_in_window"] >= 1
    assert all(e["event"].startswith("aof") for e in aof.evidence["events"])
    assert aof.evidence["max_ms_in_window"] < aof.evidence["threshold_ms"] == 100
    assert aof.severity is (Severity.WARNING if aof.evidence["count_in_window"] >= 3
                            else Severity.INFO)
    # persistence alone: the setting is still named
    alone = codes(manager.diagnose(target(srv.addr), DiagnoseOptions(categories=("persistence",))))
    always = alone["redis.persistence.appendfsync_always"]
    assert always.severity is Severity.INFO and always.evidence["appendfsync"] == "always"
    assert "latency_monitor_disabled" not in " ".join(found)


def test_appendfsync_everysec_is_quiet(servers: Servers, manager) -> None:
    srv = servers.start("--appendonly", "yes", "--appendfsync", "everysec",
                        "--latency-monitor-threshold", "100")
    with srv.client() as c:
        for i in range(200):
            c.set(f"w{i}", i)
    r = manager.diagnose(target(srv.addr), DiagnoseOptions(
        categories=("persistence", "performance")))
    found = codes(r)
    assert not {"redis.persistence.appendfsync_always", "redis.performance.aof_latency",
                "redis.persistence.aof_fsync_delayed"} & set(found)
    assert all(f.severity is Severity.INFO for f in r.findings), r.findings


# -- item 9: INFO errorstats ----------------------------------------------------------------

def test_error_replies_judged_as_rates(servers: Servers, manager) -> None:
    srv = servers.start("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    t = target(srv.addr)

    def refuse(c, n: int) -> None:  # type: ignore[no-untyped-def]
        for i in range(n):
            try:
                c.set(f"big{i}", "x" * 100_000)
            except Exception:  # OOM once full: what this test seeds
                pass

    with srv.client() as c:
        refuse(c, 40)
        c.set("s", "string")
        for _ in range(3):
            try:
                c.lpush("s", 1)
            except Exception:  # WRONGTYPE: a client bug, seeded on purpose
                pass
        c.config_set("maxmemory", "0")  # room again: the refusals are history
    # older than the window (1 s here; a younger server's start is its window)
    time.sleep(2.1)
    r = manager.diagnose(target(srv.addr, thresholds={"rate_window_seconds": 1}), PERF)
    errs = [f for f in r.findings if f.code == "redis.performance.error_replies"]
    by = {f.evidence["error"]: f for f in errs}
    # (ERR: this test's own redis-py clients send CLIENT SETINFO, which Redis 7.0 refuses)
    assert {"OOM", "WRONGTYPE"} <= set(by) <= {"OOM", "WRONGTYPE", "ERR"}
    # lifetime totals with no new refusals in the window: info, "since start"
    assert by["OOM"].severity is Severity.INFO and by["OOM"].evidence["errorstat_OOM"] > 0
    assert by["OOM"].evidence["errorstat_OOM_in_window"] == 0
    assert by["OOM"].evidence["window_source"] == "in-run"
    assert r.metrics["errorstat_WRONGTYPE"] == 3

    snap = Snapshot(at=utcnow(), metrics=r.metrics)
    with srv.client() as c:
        c.config_set("maxmemory", "2mb")
        refuse(c, 10)
        c.config_set("maxmemory", "0")  # else LPUSH is refused with OOM before WRONGTYPE
        for _ in range(5):
            try:
                c.lpush("s", 1)
            except Exception:  # WRONGTYPE again
                pass
    r2 = manager.diagnose(t, DiagnoseOptions(categories=("performance",), history=(snap,)))
    by = {f.evidence["error"]: f for f in r2.findings if f.code == "redis.performance.error_replies"}
    # refused writes that still happen warn; a client's WRONGTYPE bug stays an info
    assert by["OOM"].severity is Severity.WARNING
    assert by["OOM"].evidence["errorstat_OOM_in_window"] >= 10
    assert by["OOM"].evidence["window_source"] == "history"
    assert "maxmemory" in by["OOM"].suggestion
    assert by["WRONGTYPE"].severity is Severity.INFO
    assert by["WRONGTYPE"].evidence["errorstat_WRONGTYPE_in_window"] == 5


def test_error_prefix_new_since_the_stored_run_is_a_rate(servers: Servers, manager) -> None:
    """INFO errorstats lists only the prefixes seen: one absent from the earlier run was
    0 then, and its refusals since are a rate over the stored window, not "since start"."""
    srv = servers.start("--maxmemory", "2mb", "--maxmemory-policy", "noeviction")
    t = target(srv.addr)
    r = manager.diagnose(t, PERF)
    assert "errorstat_OOM" not in r.metrics
    snap = Snapshot(at=utcnow(), metrics=r.metrics)
    with srv.client() as c:
        for i in range(40):
            try:
                c.set(f"big{i}", "x" * 100_000)
            except Exception:  # OOM once full: what this test seeds
                pass
    r2 = manager.diagnose(t, DiagnoseOptions(categories=("memory", "performance"),
                                             history=(snap,)))
    by = {f.evidence["error"]: f for f in r2.findings if f.code == "redis.performance.error_replies"}
    assert by["OOM"].severity is Severity.WARNING, by["OOM"]
    assert by["OOM"].evidence["window_source"] == "history"
    assert by["OOM"].evidence["errorstat_OOM_in_window"] == by["OOM"].evidence["errorstat_OOM"]
    near = codes(r2)["redis.memory.noeviction_near_limit"]
    assert "are failing with OOM" in near.title


# -- item 10: expired keys not reclaimed ------------------------------------------------------

def test_expired_keys_not_reclaimed(servers: Servers, manager) -> None:
    srv = servers.start("--enable-debug-command", "yes")
    with srv.client() as c:
        c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # active expiry stalled
        pipe = c.pipeline(transaction=False)
        for i in range(1000):
            pipe.set(f"ttl:{i}", "v" * 100, px=50)
        for i in range(1000):
            pipe.set(f"keep:{i}", "v" * 100)
        pipe.execute()
    time.sleep(0.2)  # every ttl:* key is logically expired, none reclaimed
    r = manager.diagnose(target(srv.addr), MEMORY)
    f = codes(r)["redis.memory.expired_not_reclaimed"]
    assert f.severity is Severity.WARNING
    assert f.evidence["keys_with_ttl"] == 1000 and f.evidence["scan_expired_reclaimed"] >= 900
    assert f.evidence["scan_stale_pct"] > 25

    # the look-alike: as many keys with a TTL, none expired yet
    with srv.client() as c:
        pipe = c.pipeline(transaction=False)
        for i in range(1000):
            pipe.set(f"later:{i}", "v" * 100, ex=3600)
        pipe.execute()
    r = manager.diagnose(target(srv.addr), MEMORY)
    assert "redis.memory.expired_not_reclaimed" not in codes(r)
    assert r.metrics["expired_stale_pct_sampled"] == 0


# -- item 17: suggestions use only what their finding shows -----------------------------------

def test_clients_high_names_the_sources_it_suggests_looking_at(servers: Servers,
                                                               manager) -> None:
    srv = servers.start("--maxclients", "10")
    socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(8)]
    try:
        r = manager.diagnose(target(srv.addr), DiagnoseOptions(categories=("connection",)))
        found = codes(r)
        f = found["redis.connection.clients_high"]
        assert f.evidence["by_source"] == {"127.0.0.1": 8}
        assert "by_source" in f.suggestion
        # no idle_clients finding here: the suggestion must not send the reader to one
        assert "redis.connection.idle_clients" not in found
        assert "idle_clients" not in f.suggestion
    finally:
        for s in socks:
            s.close()


# -- item 15: swapping, guarded and confirmed ---------------------------------------------

def _rss_as_if_swapped(monkeypatch: pytest.MonkeyPatch, port: int, readings: list[bool]) -> None:
    """A server whose RSS falls below its data only when pages are swapped out: this
    machine has no swap (/proc/swaps is empty), so no real Redis here can show it. The
    server, its data and every other field are real; only ``used_memory_rss`` and the
    ratio Redis derives from it are rewritten, in the first reading (the plugin's fetch)
    and, where ``readings`` says so, in the second one (INFO again, a moment later)."""
    import redis

    from kubestack_ai.plugins.redis import topology

    def swapped(info: dict[str, Any]) -> dict[str, Any]:
        rss = int(info["used_memory"]) // 3
        return {**info, "used_memory_rss": rss,
                "mem_fragmentation_ratio": round(rss / int(info["used_memory"]), 2)}

    real_fetch, real_info = topology.fetch_node, redis.Redis.info

    def fetch_node(client: Any, addr: str, *a: Any, **kw: Any) -> Any:
        data = real_fetch(client, addr, *a, **kw)
        if addr.endswith(f":{port}") and readings[0]:
            data.info = swapped(data.info)
        return data

    def info(self: Any, section: Any = None, *args: Any, **kw: Any) -> Any:
        got = real_info(self, section, *args, **kw)
        kwargs = self.connection_pool.connection_kwargs
        if isinstance(got, dict) and section == "all" and kwargs.get("port") == port \
                and readings[1]:  # a pipeline's info() queues; the fetch is rewritten above
            return swapped(got)
        return got

    monkeypatch.setattr(topology, "fetch_node", fetch_node)
    monkeypatch.setattr(redis.Redis, "info", info)


@pytest.mark.parametrize(("readings", "data_mb", "expected"), [
    ((True, True), 30, True),    # swapped in both readings: the finding
    ((True, False), 30, False),  # look-alike: the first RSS was stale, the second is not
    ((True, True), 5, False),    # look-alike: under MEMORY DOCTOR's 10 MB guard
], ids=["swapped", "stale-rss", "small"])
def test_swapping_needs_10_mb_and_a_second_reading(
        servers: Servers, manager, monkeypatch: pytest.MonkeyPatch,
        readings: tuple[bool, bool], data_mb: int, expected: bool) -> None:
    srv = servers.start()
    with srv.client() as c:
        pipe = c.pipeline(transaction=False)
        for i in range(data_mb * 100):
            pipe.set(f"k:{i}", "x" * 10_000)
        pipe.execute()
    _rss_as_if_swapped(monkeypatch, srv.port, list(readings))
    r = manager.diagnose(target(srv.addr), MEMORY)
    assert not r.errors, r.errors
    assert r.metrics["mem_fragmentation_ratio"] < 1  # what the first reading said
    found = codes(r).get("redis.memory.swapping")
    if not expected:
        assert found is None, found
        return
    assert found is not None, sorted(codes(r))
    assert found.severity is Severity.WARNING
    assert found.evidence["mem_fragmentation_ratio"] < 1
    assert found.evidence["mem_fragmentation_ratio_second"] < 1
    assert found.evidence["threshold_bytes"] == 10 * 1024 * 1024
