"""Sentinel sets and Clusters under failure: hung (SIGSTOP) and killed nodes and
sentinels, lost replicas, interrupted resharding, unassigned slots, failovers.

Every process these tests SIGSTOP is resumed in the fixture's teardown (and then
stopped with the rest): a stopped process would otherwise outlive the test run.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubestack_ai.plugins import (
    DiagnoseOptions,
    Mode,
    PluginConfig,
    PluginManager,
    Severity,
    Snapshot,
    Status,
)
from kubestack_ai.plugins.models import utcnow

from .util import RedisProc, Servers, codes, start_cluster, start_sentinel_set, target, wait_for

NODE_TIMEOUT = 1.0  # the plugin's per-node socket time-out in these tests


class Stopper:
    """SIGSTOP/SIGCONT by the Popen handle of a server we started; resumes all at exit."""

    def __init__(self) -> None:
        self.stopped: list[RedisProc] = []

    def stop(self, p: RedisProc) -> None:
        os.kill(p.proc.pid, signal.SIGSTOP)
        self.stopped.append(p)

    def resume(self, p: RedisProc) -> None:
        if p in self.stopped:
            os.kill(p.proc.pid, signal.SIGCONT)
            self.stopped.remove(p)

    def resume_all(self) -> None:
        for p in list(self.stopped):
            self.resume(p)


@pytest.fixture
def stopper() -> Iterator[Stopper]:
    s = Stopper()
    yield s
    s.resume_all()


@pytest.fixture(scope="module")
def fast() -> Iterator[PluginManager]:
    m = PluginManager()
    m.load_builtin("redis-diagnostics", PluginConfig(options={"socket_timeout": NODE_TIMEOUT}))
    yield m
    m.stop_all()


# what these faults are about; memory and performance depend on this shared, noisy
# machine (a slow fork while a replica syncs) and are tested elsewhere
CATEGORIES = ("cluster", "sentinel", "replication", "connection")


def diagnose(m: PluginManager, t: Any, history: tuple[Snapshot, ...] = ()) -> Any:
    return m.diagnose(t, DiagnoseOptions(categories=CATEGORIES, history=history), timeout=30)


def snap(r: Any) -> Snapshot:
    return Snapshot(at=utcnow(), metrics=r.metrics)


def not_info(r: Any) -> list[Any]:
    return [f for f in r.findings if f.severity is not Severity.INFO]


# -- Cluster ---------------------------------------------------------------------------


def _roles(nodes: list[RedisProc]) -> tuple[dict[str, RedisProc], dict[str, RedisProc]]:
    """master addr -> its replica, and replica addr -> its master (one replica each)."""
    with nodes[0].client() as c:
        layout = c.execute_command("CLUSTER NODES")
    by_id = {n["node_id"]: a for a, n in layout.items()}
    procs = {p.addr: p for p in nodes}
    replica_of = {procs[by_id[n["master_id"]]].addr: procs[a] for a, n in layout.items()
                  if "slave" in n["flags"]}
    return replica_of, {r.addr: procs[m] for m, r in replica_of.items()}


@pytest.fixture
def cluster6(servers: Servers) -> list[RedisProc]:
    """Three masters, one replica each (a fresh cluster per test: the tests break it)."""
    return start_cluster(servers, 3, 1)


def test_hung_cluster_master_is_named_while_the_rest_is_diagnosed_then_failover(
        cluster6: list[RedisProc], fast: PluginManager, stopper: Stopper) -> None:
    replica_of, _ = _roles(cluster6)
    t = target(cluster6[0].addr, mode=Mode.CLUSTER)
    r = diagnose(fast, t)
    assert r.status is Status.HEALTHY, not_info(r)
    assert "redis.cluster.failover" not in codes(r)  # a fresh cluster: no promotion
    history = (snap(r),)
    victim = next(p for p in cluster6[1:] if p.addr in replica_of)
    heir = replica_of[victim.addr]

    stopper.stop(victim)
    t0 = time.monotonic()
    r = diagnose(fast, t, history)
    took = time.monotonic() - t0
    assert took < NODE_TIMEOUT + 1.5, took  # one time-out, not the budget
    f = codes(r)["redis.cluster.node_unreachable"]
    assert f.severity is Severity.CRITICAL and f.evidence["node"] == victim.addr
    assert "did not answer within 1 s" in f.evidence["error"]
    assert f.evidence["slots"] > 0 and f.evidence["slot_ranges"]
    # the cluster's own view of it, from the five nodes that answer
    assert sum(len(v) for v in f.evidence["cluster_view"]["flags"].values()) == 5
    assert set(r.metrics["nodes"]) == {p.addr for p in cluster6} - {victim.addr}
    assert r.status is Status.CRITICAL
    for _ in range(3):  # again, with the layout known: the hung node never breaks a run
        again = diagnose(fast, t, history)
        assert again.errors == {}, again.errors
        assert "redis.cluster.node_unreachable" in codes(again)

    def failed_over() -> Any:
        res = diagnose(fast, t, history)
        return res if "redis.cluster.failover" in codes(res) else None

    r = wait_for(failed_over, 20, "the replica to take the hung master's slots", every=0.3)
    fo = codes(r)["redis.cluster.failover"]
    assert fo.evidence["from"] == victim.addr and fo.evidence["to"] == heir.addr
    assert fo.severity is Severity.WARNING and fo.evidence["old_master_down"] is True
    assert fo.evidence["master_replid2"] not in (None, "0" * 40)
    assert fo.evidence["cluster_current_epoch"] > history[0].metrics["cluster_current_epoch"]
    # the hung node no longer serves a slot: a warning now, not critical
    unreachable = codes(r)["redis.cluster.node_unreachable"]
    assert unreachable.severity is Severity.WARNING and unreachable.evidence["slots"] == 0
    failed = codes(r).get("redis.cluster.node_failed")
    assert failed is None or failed.severity is Severity.WARNING
    assert r.metrics["cluster_state"] == "ok"

    stopper.resume(victim)  # it comes back as the heir's replica: the failover is INFO

    def healed() -> Any:
        res = diagnose(fast, t, history)
        found = codes(res)
        ok = ("redis.cluster.node_unreachable" not in found
              and "redis.cluster.node_failed" not in found
              and "redis.cluster.master_replica_lost" not in found)
        return res if ok else None

    r = wait_for(healed, 20, "the old master to rejoin as a replica", every=0.3)
    fo = codes(r)["redis.cluster.failover"]
    assert fo.severity is Severity.INFO and fo.evidence["old_master_down"] is False
    assert r.status is Status.HEALTHY, not_info(r)


def test_dead_replica_is_a_warning_and_its_master_lost_coverage(
        cluster6: list[RedisProc], fast: PluginManager) -> None:
    replica_of, master_of = _roles(cluster6)
    t = target(cluster6[0].addr, mode=Mode.CLUSTER)
    r = diagnose(fast, t)
    assert "redis.cluster.master_replica_lost" not in codes(r)
    assert "redis.cluster.master_without_replica" not in codes(r)
    victim = next(p for p in cluster6[1:] if p.addr in master_of)
    master = master_of[victim.addr]
    victim.stop()

    def failed() -> Any:
        res = diagnose(fast, t)
        return res if "redis.cluster.node_failed" in codes(res) else None

    r = wait_for(failed, 15, "the peers to mark the replica failed", every=0.3)
    found = codes(r)
    assert found["redis.cluster.node_failed"].severity is Severity.WARNING
    assert found["redis.cluster.node_failed"].evidence["role"] == "replica"
    assert found["redis.cluster.node_unreachable"].severity is Severity.WARNING
    lost = found["redis.cluster.master_replica_lost"]
    assert lost.severity is Severity.WARNING
    assert set(lost.evidence["masters"]) == {master.addr}
    assert lost.evidence["masters"][master.addr]["replicas_down"] == [victim.addr]
    assert lost.evidence["masters"][master.addr]["slot_ranges"]
    assert r.status is Status.WARNING, [f.code for f in not_info(r)]  # every slot served


def slot_owner(r: Any, slot: int) -> str | None:
    """The master serving ``slot``, from the result's ``cluster_masters`` ranges."""
    for addr, ranges in r.metrics["cluster_masters"].items():
        for rng in ranges:
            lo, _, hi = rng.partition("-")
            if int(lo) <= slot <= int(hi or lo):
                return str(addr)
    return None


@pytest.fixture
def cluster3(servers: Servers) -> list[RedisProc]:
    return start_cluster(servers, 3, 0)


def test_open_slots_and_unassigned_ranges_are_named(cluster3: list[RedisProc],
                                                    fast: PluginManager) -> None:
    a, b = cluster3[0], cluster3[1]
    t = target(a.addr, mode=Mode.CLUSTER)
    with a.client() as ca, b.client() as cb:
        layout = ca.execute_command("CLUSTER NODES")
        id_a, id_b = layout[a.addr]["node_id"], layout[b.addr]["node_id"]
        slot = int(layout[a.addr]["slots"][0][0])
        r = diagnose(fast, t)
        assert "redis.cluster.open_slots" not in codes(r)
        # an interrupted resharding: slot marked on both sides, keys never moved
        cb.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", id_a)
        ca.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", id_b)
        try:
            r = diagnose(fast, t)
        finally:
            ca.execute_command("CLUSTER SETSLOT", slot, "STABLE")
            cb.execute_command("CLUSTER SETSLOT", slot, "STABLE")
    f = codes(r)["redis.cluster.open_slots"]
    assert f.severity is Severity.WARNING and f.evidence["slots"] == [str(slot)]
    assert {(o["node"], o["state"]) for o in f.evidence["open"]} == \
        {(a.addr, "migrating"), (b.addr, "importing")}
    assert "redis-cli --cluster fix" in f.suggestion

    # slots nobody serves: forgotten by every node
    for n in cluster3:
        with n.client() as c:
            c.execute_command("CLUSTER DELSLOTS", *range(slot, slot + 10), 16383)
    try:
        r = diagnose(fast, t)
    finally:
        with a.client() as ca:
            ca.execute_command("CLUSTER ADDSLOTS", *range(slot, slot + 10))
        owner = next(n for n in cluster3 if layout[n.addr]["slots"][-1][-1] == "16383")
        with owner.client() as c:
            c.execute_command("CLUSTER ADDSLOTS", 16383)
    f = codes(r)["redis.cluster.slots_uncovered"]
    assert f.severity is Severity.CRITICAL
    assert f.evidence["unassigned"] == [f"{slot}-{slot + 9}", "16383"]
    assert f"{slot}-{slot + 9}, 16383" in f.title

    # the healthy look-alike of a failover: a finished resharding moves a slot between
    # two healthy masters; nothing is reported as a failover
    wait_for(lambda: diagnose(fast, t).metrics["cluster_slots_assigned"] == 16384, 10,
             "every slot assigned again")
    history = (snap(diagnose(fast, t)),)
    with a.client() as ca, b.client() as cb:
        cb.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", id_a)
        ca.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", id_b)
        for c in (cb, ca):
            c.execute_command("CLUSTER SETSLOT", slot, "NODE", id_b)
    def on_b() -> Any:
        res = diagnose(fast, t, history)
        return res if slot_owner(res, slot) == b.addr else None

    moved = wait_for(on_b, 10, "the slot served by b")
    assert "redis.cluster.failover" not in codes(moved)
    assert moved.status is Status.HEALTHY, not_info(moved)


# -- Sentinel --------------------------------------------------------------------------


@pytest.fixture
def sentinel_set(servers: Servers) -> tuple[RedisProc, RedisProc, list[RedisProc]]:
    return start_sentinel_set(servers, failover_timeout_ms=10000)


def _st(sentinels: list[RedisProc]) -> Any:
    return target(*(s.addr for s in sentinels), mode=Mode.SENTINEL,
                  options={"master_name": "mymaster"})


@pytest.mark.parametrize("which", [0, 2], ids=["first", "last"])
def test_hung_sentinel_is_named_and_the_set_still_diagnosed(
        sentinel_set: Any, manager: PluginManager, stopper: Stopper, which: int) -> None:
    """With the default per-node time-out (2 s), not the 30 s budget."""
    fast = manager
    master, replica, sentinels = sentinel_set
    r = diagnose(fast, _st(sentinels))
    assert r.status is Status.HEALTHY, not_info(r)
    assert "redis.sentinel.failover" not in codes(r)
    hung = sentinels[which]
    stopper.stop(hung)
    t0 = time.monotonic()
    r = diagnose(fast, _st(sentinels))
    took = time.monotonic() - t0
    assert took < 2.0 + 1.5, took
    f = codes(r)["redis.sentinel.unreachable"]
    assert f.severity is Severity.WARNING  # two of three still reach the quorum of 2
    assert list(f.evidence["unreachable"]) == [hung.addr]
    assert "did not answer within 2 s" in f.evidence["unreachable"][hung.addr]
    assert r.metrics["sentinel_master"] == master.addr
    assert set(r.metrics["nodes"]) == {master.addr, replica.addr}
    assert r.status is Status.WARNING, [x.code for x in not_info(r)]


def test_sentinel_failover_is_reported_from_history_and_from_the_epoch(
        sentinel_set: Any, fast: PluginManager, stopper: Stopper) -> None:
    master, replica, sentinels = sentinel_set
    t = _st(sentinels)
    r = diagnose(fast, t)
    assert r.metrics["sentinel_config_epoch"] == 0
    history = (snap(r),)
    stopper.stop(master)

    def promoted() -> Any:
        res = diagnose(fast, t, history)
        return res if res.metrics.get("sentinel_master") == replica.addr else None

    r = wait_for(promoted, 30, "the sentinels to promote the replica", every=0.3)
    f = codes(r)["redis.sentinel.failover"]
    assert f.evidence["from"] == master.addr and f.evidence["to"] == replica.addr
    assert f.severity is Severity.WARNING and f.evidence["old_master_down"] is True
    assert f.evidence["config_epoch"] >= 1 and f.evidence["previous_config_epoch"] == 0
    assert f.evidence["master_replid2"] is not None
    # the hung old master, now a replica down in the sentinels' eyes: a warning
    assert r.status is Status.WARNING, [x.code for x in not_info(r)]

    stopper.resume(master)

    def healed() -> Any:
        res = diagnose(fast, t, history)
        fo = codes(res).get("redis.sentinel.failover")
        return res if fo is not None and fo.severity is Severity.INFO else None

    r = wait_for(healed, 30, "the old master to come back as a replica", every=0.3)
    # and without history: the epoch and the promoted master's replid2 still say it
    r = diagnose(fast, t)
    f = codes(r)["redis.sentinel.failover"]
    assert f.evidence["from"] is None and f.evidence["to"] == replica.addr
    assert f.severity is Severity.INFO and f.evidence["config_epoch"] >= 1


def test_hung_standalone_server_is_named_within_the_node_time_out(
        servers: Servers, manager: PluginManager, stopper: Stopper) -> None:
    server = servers.start()
    t = target(server.addr)
    assert diagnose(manager, t).status is Status.HEALTHY
    stopper.stop(server)
    t0 = time.monotonic()
    r = diagnose(manager, t)
    assert time.monotonic() - t0 < 2.0 + 1.5
    f = codes(r)["redis.connection.unreachable"]
    assert f.severity is Severity.CRITICAL
    assert f.title.startswith("No answer within 2 s: "), f.title
    assert "did not answer within 2 s" in f.evidence["error"], f.evidence
