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


# -- item 1: big keys anywhere in the keyspace ------------------------------------------------

BUDGET = 500


def _first_walked(c, budget: int) -> set[str]:  # type: ignore[no-untyped-def]
    """The keys a walk from cursor 0 meets within ``budget`` keys (batches of 100)."""
    seen: set[str] = set()
    cursor = 0
    while True:
        cursor, batch = c.scan(cursor, count=100)
        seen.update(batch)
        if cursor == 0 or len(seen) >= budget:
            return seen


def _late_name(c, prefix: str, budget: int) -> str:  # type: ignore[no-untyped-def]
    """A key name that a walk from cursor 0 does not meet within ``budget`` keys: where
    a bounded sample starting at 0 never looks (its bucket does not move as it grows)."""
    for i in range(500):
        name = f"{prefix}:{i}"
        c.set(name, "x")
        if name not in _first_walked(c, budget):
            c.delete(name)
            return name
        c.delete(name)
    raise AssertionError("no name outside the first walk")


def _keyspace(c, big: bool) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """10,000 small keys and, when ``big``, a 20,000-element list and a 6,000-field hash
    placed where a walk from cursor 0 does not reach within the budget."""
    _fill(c, 10_000, "small")
    lst, hsh = _late_name(c, "queue", BUDGET), _late_name(c, "profile", BUDGET)
    if big:
        for start in range(0, 20_000, 5000):
            c.rpush(lst, *range(start, start + 5000))
        c.hset(hsh, mapping={f"f{i}": i for i in range(6000)})
    return lst, hsh


def _runs(manager, addr: str, n: int, **th: float) -> list:  # type: ignore[no-untyped-def]
    """``n`` runs, each given the metrics of the ones before as history (as the
    scheduler gives them, oldest first, at most 10)."""
    t = target(addr, thresholds={"bigkeys_scan_keys": BUDGET, "bigkeys_elements_warning": 5000,
                                 "bigkeys_full_scan_keys": 0, **th})
    history: list[Snapshot] = []
    out = []
    for _ in range(n):
        r = manager.diagnose(t, DiagnoseOptions(categories=("memory",),
                                                history=tuple(history[-10:])))
        history.append(Snapshot(at=utcnow(), metrics=r.metrics))
        out.append(r)
    return out


def test_big_keys_anywhere_are_found_by_the_resumed_walk_and_kept(servers: Servers,
                                                                   manager) -> None:
    srv = servers.start()
    with srv.client() as c:
        lst, hsh = _keyspace(c, big=True)
    runs = _runs(manager, srv.addr, 26)  # 10,002 keys / 500 a run: one pass in 21 runs
    found = [{k["key"] for k in f.evidence["by_elements"]} if f else set()
             for f in (codes(r).get("redis.memory.big_keys") for r in runs)]
    first = next(i for i, keys in enumerate(found) if keys == {lst, hsh})
    assert first <= 21, found
    # once seen, never lost: re-measured every run while the walk is elsewhere
    assert all(keys == {lst, hsh} for keys in found[first:]), found
    f = codes(runs[-1])["redis.memory.big_keys"]
    assert f.evidence["known_big_keys_remeasured"] >= 1 or f.evidence["keys_sampled"] >= BUDGET
    assert f.evidence["keys_sampled"] <= BUDGET + 100  # the budget holds
    assert "last_full_pass" in f.evidence and "walked since" in f.title
    assert 0 < f.evidence["coverage_pct"] <= 100
    # coverage grows run by run, and a pass reaches the whole keyspace
    covers = [r.metrics["bigkeys_coverage_pct"] for r in runs[:21]]
    assert covers[:5] == sorted(covers[:5]) and max(covers) == 100.0
    # deleted, it leaves the finding at the next run
    with srv.client() as c:
        c.unlink(lst)
    more = manager.diagnose(target(srv.addr, thresholds={
        "bigkeys_scan_keys": BUDGET, "bigkeys_elements_warning": 5000}), DiagnoseOptions(
        categories=("memory",), history=(Snapshot(at=utcnow(), metrics=runs[-1].metrics),)))
    assert [k["key"] for k in codes(more)["redis.memory.big_keys"].evidence["by_elements"]] == [hsh]


def test_big_keys_look_alike_of_small_keys_stays_quiet_over_a_pass(servers: Servers,
                                                                    manager) -> None:
    srv = servers.start()
    with srv.client() as c:
        _keyspace(c, big=False)
        c.rpush("queue:small", *range(4000))  # long, not long enough (5,000)
    runs = _runs(manager, srv.addr, 22)
    assert not any("redis.memory.big_keys" in codes(r) for r in runs)
    assert max(r.metrics["bigkeys_coverage_pct"] for r in runs) == 100.0


def test_a_keyspace_within_the_budget_is_walked_whole_every_run(servers: Servers,
                                                                 manager) -> None:
    srv = servers.start()
    with srv.client() as c:
        _fill(c, 1500, "small")
        c.rpush("queue", *range(6000))
    for r in _runs(manager, srv.addr, 2, bigkeys_scan_keys=2000):
        f = codes(r)["redis.memory.big_keys"]
        assert f.evidence["complete_scan"] is True and f.evidence["coverage_pct"] == 100.0
        assert f.evidence["keys_sampled"] == 1501 and "walked" not in f.title


def test_one_off_diagnosis_walks_a_keyspace_up_to_the_documented_size(servers: Servers,
                                                                      manager) -> None:
    srv = servers.start()
    with srv.client() as c:
        lst, hsh = _keyspace(c, big=True)
    t = target(srv.addr, thresholds={"bigkeys_elements_warning": 5000})
    f = codes(manager.diagnose(t, MEMORY))["redis.memory.big_keys"]
    assert {k["key"] for k in f.evidence["by_elements"]} == {lst, hsh}
    assert f.evidence["complete_scan"] is True and f.evidence["keys_sampled"] == 10_002
    # above the documented size, a one-off run is a bounded sample that says so
    small = target(srv.addr, thresholds={"bigkeys_elements_warning": 5000,
                                         "bigkeys_full_scan_keys": 5000})
    r = manager.diagnose(small, MEMORY)
    assert r.metrics["keys_sampled"] < 10_002 and r.metrics["bigkeys_coverage_pct"] < 100


# -- item 7: nodes that disagree about slots -------------------------------------------------

CLUSTER = DiagnoseOptions(categories=("cluster",))


def test_slots_a_node_lost_are_named_from_its_own_view(servers: Servers, manager) -> None:
    from .util import start_cluster

    nodes = start_cluster(servers, 3, 0)
    t = target(nodes[0].addr, mode="cluster")
    # the look-alike first: a healthy cluster, every node agreeing
    r = manager.diagnose(t, CLUSTER)
    assert not {"redis.cluster.slots_uncovered", "redis.cluster.nodes_disagree"} & set(codes(r))

    with nodes[1].client() as c:
        mine = next(n for n in c.execute_command("CLUSTER NODES").values()
                    if "myself" in n["flags"])
        lo = int(mine["slots"][0][0])
        c.execute_command("CLUSTER DELSLOTS", *range(lo, lo + 100))  # its peers don't know
    wait_for(lambda: manager.diagnose(t, CLUSTER).metrics["cluster_slots_assigned"] < 16384,
             10, "the node to count 16284 slots")
    f = codes(manager.diagnose(t, CLUSTER))["redis.cluster.slots_uncovered"]
    assert f.severity is Severity.CRITICAL
    assert f.evidence["differing_nodes"] == [nodes[1].addr] and f.evidence["nodes_agree"] is False
    view = f.evidence["by_node"][nodes[1].addr]
    assert view == {"cluster_slots_assigned": 16284, "unassigned": [f"{lo}-{lo + 99}"]}
    assert f.evidence["unassigned"] == []  # no slot is unassigned in every view
    assert nodes[1].addr in f.title and f"{lo}-{lo + 99}" in f.title

    # slots no node serves, in every view: named as such, and the nodes agree
    with nodes[1].client() as c:
        c.execute_command("CLUSTER ADDSLOTS", *range(lo, lo + 100))
    for n in nodes:  # every node forgets the owner of the last four slots
        with n.client() as c:
            c.execute_command("CLUSTER DELSLOTS", 16380, 16381, 16382, 16383)
    f = codes(manager.diagnose(t, CLUSTER))["redis.cluster.slots_uncovered"]
    assert f.evidence["unassigned"] == ["16380-16383"] and f.evidence["nodes_agree"] is True
    assert "assigned to no node: 16380-16383" in f.title
