"""Issue 24's Redis verdicts on servers the team had not seen, each fault seeded on a
server of our own and each with the healthy look-alike that must stay quiet: big keys
anywhere in the keyspace (item 1), a keyspace of expired-but-held keys (item 2), the hit
rate of a server that just started or started long ago (item 3), and one AOF latency
finding per cause (item 8)."""

from __future__ import annotations

import time

from kubestack_ai.plugins import DiagnoseOptions, Severity, Snapshot
from kubestack_ai.plugins.models import utcnow

from .util import Servers, codes, target, wait_for

MEMORY = DiagnoseOptions(categories=("memory",))
PERF = DiagnoseOptions(categories=("performance",))


def _fill(c, n: int, prefix: str = "k", **kw) -> None:  # type: ignore[no-untyped-def]
    pipe = c.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{prefix}:{i}", "v", **kw)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


# -- item 2: a keyspace (nearly) all expired but held ---------------------------------------

def test_expired_estimate_holds_when_every_key_met_is_expired(servers: Servers,
                                                              manager) -> None:
    srv = servers.start("--enable-debug-command", "yes")
    with srv.client() as c:
        c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        _fill(c, 3000, "ttl", px=30)
    time.sleep(0.1)  # every key logically expired, none reclaimed: SCAN returns none
    r = manager.diagnose(target(srv.addr), MEMORY)
    f = codes(r)["redis.memory.expired_not_reclaimed"]
    assert f.severity is Severity.WARNING
    assert f.evidence["scan_keys"] == 0 and f.evidence["scan_expired_reclaimed"] >= 2900
    assert f.evidence["scan_stale_pct"] == 100.0 and "About 100%" in f.title

    # the look-alike: a keyspace emptied by DEL, not by expiry: nothing to estimate
    srv2 = servers.start("--enable-debug-command", "yes")
    with srv2.client() as c:
        c.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        _fill(c, 3000, "ttl", ex=3600)
    r = manager.diagnose(target(srv2.addr), MEMORY)
    assert "redis.memory.expired_not_reclaimed" not in codes(r)
    assert r.metrics["expired_stale_pct_sampled"] == 0


# -- item 3: hit rate judged over a window, never a lifetime ratio ----------------------------

def _lookups(c, misses: int, hits: int) -> None:  # type: ignore[no-untyped-def]
    c.set("present", 1)
    pipe = c.pipeline(transaction=False)
    for i in range(misses):
        pipe.get(f"missing{i}")
    for _ in range(hits):
        pipe.get("present")
    pipe.execute()


def test_hit_rate_of_a_warm_up_long_ago_is_not_a_finding(servers: Servers, manager) -> None:
    """A server up for longer than the window whose misses all happened at its start (a
    cold cache warming up) and that has served nothing since: the lifetime ratio is low,
    the window's lookups are none. The window is 1 s here, so that the server is old."""
    srv = servers.start()
    with srv.client() as c:
        _lookups(c, 1500, 100)
    time.sleep(2.1)  # INFO's uptime counts whole seconds
    t = target(srv.addr, thresholds={"rate_window_seconds": 1})
    r = manager.diagnose(t, PERF)
    assert "redis.performance.hit_rate_low" not in codes(r), codes(r)
    assert r.metrics["hit_rate_since_start"] == round(100 / 1600, 4)

    # the look-alike that must warn: the misses go on within the window (history)
    snap = Snapshot(at=utcnow(), metrics=r.metrics)
    with srv.client() as c:
        _lookups(c, 1200, 100)
    r = manager.diagnose(target(srv.addr, thresholds={"rate_window_seconds": 60}),
                         DiagnoseOptions(categories=("performance",), history=(snap,)))
    f = codes(r)["redis.performance.hit_rate_low"]
    assert f.severity is Severity.WARNING
    assert (f.evidence["keyspace_misses"], f.evidence["keyspace_hits"]) == (1200, 100)
    assert f.evidence["window_source"] == "history"


def test_hit_rate_of_a_server_that_just_started_is_its_uptime(servers: Servers,
                                                               manager) -> None:
    srv = servers.start()
    with srv.client() as c:
        _lookups(c, 1500, 100)
    r = manager.diagnose(target(srv.addr), PERF)
    f = codes(r)["redis.performance.hit_rate_low"]
    assert f.evidence["window_source"] == "uptime"
    assert "since the server started" in f.title
    assert f.evidence["keyspace_misses"] == 1500 and f.evidence["keyspace_hits"] == 100

    # the look-alike: a young server whose lookups hit
    srv2 = servers.start()
    with srv2.client() as c:
        _lookups(c, 100, 1500)
    assert "redis.performance.hit_rate_low" not in codes(manager.diagnose(target(srv2.addr),
                                                                          PERF))


# -- item 8: one AOF latency finding per cause ------------------------------------------------

def test_appendfsync_always_is_one_finding_with_its_latency_events(servers: Servers,
                                                                   manager) -> None:
    srv = servers.start("--appendonly", "yes", "--appendfsync", "always",
                        "--latency-monitor-threshold", "1")

    def events() -> int:
        with srv.client() as c:
            for i in range(200):
                c.set(f"w{i}", "x" * 512)
            return sum(1 for e in c.execute_command("LATENCY LATEST")
                       if str(e[0]).startswith("aof"))

    wait_for(lambda: events() >= 2, 20, "two AOF latency events", every=0)
    r = manager.diagnose(target(srv.addr), DiagnoseOptions(
        categories=("persistence", "performance")))
    aof = [f for f in r.findings if f.code == "redis.performance.aof_latency"]
    assert len(aof) == 1, [f.title for f in aof]
    f = aof[0]
    names = [e["event"] for e in f.evidence["events"]]
    assert len(names) >= 2 and all(n.startswith("aof") for n in names)
    assert f.evidence["appendfsync"] == "always"
    assert "appendfsync everysec" in f.suggestion
    # the cause is the finding: no separate info that says the same
    assert "redis.persistence.appendfsync_always" not in codes(r)

    # the look-alike: everysec with the same writes, no AOF event over the threshold
    quiet = servers.start("--appendonly", "yes", "--appendfsync", "everysec",
                          "--latency-monitor-threshold", "100")
    with quiet.client() as c:
        for i in range(200):
            c.set(f"w{i}", "x" * 512)
    r = manager.diagnose(target(quiet.addr), DiagnoseOptions(
        categories=("persistence", "performance")))
    assert "redis.performance.aof_latency" not in codes(r)
