"""Sentinel (master, replica, three sentinels) and Cluster (three masters) modes."""

from __future__ import annotations

import pytest

from kubestack_ai.plugins import Mode, Severity, Status

from .util import Servers, codes, start_cluster, start_sentinel_set, target, wait_for


@pytest.fixture(scope="module")
def sentinel_set(servers: Servers):
    return start_sentinel_set(servers)


def _sentinel_target(sentinels, name="mymaster"):
    return target(*(s.addr for s in sentinels), mode=Mode.SENTINEL,
                  options={"master_name": name})


def test_sentinel_discovers_master_and_judges_sentinels(sentinel_set, manager):
    master, replica, sentinels = sentinel_set
    r = manager.diagnose(_sentinel_target(sentinels))
    assert r.errors == {}
    bad = [f for f in r.findings if f.severity is not Severity.INFO]
    assert r.status is Status.HEALTHY, bad
    assert r.metrics["sentinel_master"] == master.addr
    assert r.metrics["sentinels_reachable"] == 3 and r.metrics["sentinel_quorum"] == 2
    assert set(r.metrics["nodes"]) == {master.addr, replica.addr}
    assert r.metrics["nodes"][master.addr]["connected_slaves"] == 1
    assert r.metrics["nodes"][replica.addr]["role"] == "slave"
    # per-node findings name their node
    f = codes(r)["redis.memory.maxmemory_unset"]
    assert set(f.evidence["nodes"]) == {master.addr, replica.addr}


def test_sentinel_unknown_master_name(sentinel_set, manager):
    _, _, sentinels = sentinel_set
    r = manager.diagnose(_sentinel_target(sentinels, "nope"))
    assert r.status is Status.CRITICAL
    err = codes(r)["redis.connection.unreachable"].evidence["error"]
    assert "no sentinel gave the address of master 'nope'" in err


def test_sentinel_down_and_replica_down(sentinel_set, manager):
    master, replica, sentinels = sentinel_set
    sentinels[2].stop()
    t = _sentinel_target(sentinels)
    r = manager.diagnose(t)
    f = codes(r)["redis.sentinel.unreachable"]
    assert f.severity is Severity.WARNING  # two of three still reach the quorum of 2
    assert list(f.evidence["unreachable"]) == [sentinels[2].addr]
    assert r.status is Status.WARNING

    replica.stop()

    def replica_judged():
        found = codes(manager.diagnose(t, ))
        return found.get("redis.sentinel.replica_down") or found.get("redis.sentinel.replica_unreachable")

    f = wait_for(replica_judged, 10, "a finding on the stopped replica", every=0.2)
    assert replica.addr in str(f.evidence)

    master.stop()  # no replica left: no failover, the sentinels keep judging
    r = manager.diagnose(t)
    assert r.status is Status.CRITICAL
    assert codes(r)["redis.connection.unreachable"].evidence["endpoints"] == [master.addr]
    assert r.metrics["sentinels_reachable"] == 2

    def master_down():
        return codes(manager.diagnose(t)).get("redis.sentinel.master_down")

    f = wait_for(master_down, 10, "the sentinels to see the master down", every=0.2)
    assert f.evidence["master"] == master.addr and "s_down" in f.evidence["flags"]


@pytest.fixture(scope="module")
def cluster(servers: Servers):
    return start_cluster(servers, 3, 0)


def test_cluster_healthy_every_node_diagnosed(cluster, manager):
    t = target(cluster[0].addr, mode=Mode.CLUSTER)
    r = manager.diagnose(t)
    assert r.errors == {}
    assert r.status is Status.HEALTHY, [f for f in r.findings if f.severity is not Severity.INFO]
    assert r.metrics["cluster_state"] == "ok" and r.metrics["cluster_slots_assigned"] == 16384
    assert set(r.metrics["nodes"]) == {n.addr for n in cluster}
    lonely = codes(r)["redis.cluster.master_without_replica"]
    assert sorted(lonely.evidence["masters"]) == sorted(n.addr for n in cluster)

    out = manager.execute(t, "slowlog_reset")
    assert out.ok, out.error
    assert set(out.value["nodes"]) == {n.addr for n in cluster}


def test_standalone_mode_on_a_cluster_node_hints_cluster_mode(cluster, manager):
    r = manager.diagnose(target(cluster[1].addr))
    assert codes(r)["redis.cluster.mode_hint"].evidence["node"] == cluster[1].addr


def test_cluster_node_stopped_is_named(cluster, manager):
    t = target(cluster[0].addr, mode=Mode.CLUSTER)
    victim = cluster[2]
    seeded_by_victim = target(victim.addr, mode=Mode.CLUSTER)
    assert manager.diagnose(seeded_by_victim).status is Status.HEALTHY
    victim.stop()
    # its only seed is gone: the nodes of the last layout answer for the cluster
    r = manager.diagnose(seeded_by_victim)
    assert codes(r)["redis.cluster.node_unreachable"].evidence["node"] == victim.addr
    r = manager.diagnose(t)
    f = codes(r)["redis.cluster.node_unreachable"]
    assert f.severity is Severity.CRITICAL and f.evidence["node"] == victim.addr
    assert f.evidence["slots"] > 0
    assert r.status is Status.CRITICAL
    assert victim.addr not in r.metrics["nodes"]

    def failed():  # the survivors mark it failed after cluster-node-timeout (1 s)
        res = manager.diagnose(t, )
        found = codes(res)
        return (res, found) if "redis.cluster.node_failed" in found else None

    r, found = wait_for(failed, 15, "the node marked failed", every=0.3)
    assert found["redis.cluster.node_failed"].evidence["node"] == victim.addr
    assert set(found["redis.cluster.state_fail"].evidence["cluster_state"]) == \
        {cluster[0].addr, cluster[1].addr}
    assert found["redis.cluster.slots_fail"].evidence["cluster_slots_fail"] > 0

    out = manager.execute(t, "slowlog_reset")  # the stopped master is named, the rest done
    assert out.ok, out.error
    assert "Connection refused" in out.value["nodes"][victim.addr]["error"]
    assert out.value["nodes"][cluster[0].addr] == {"cleared_entries": 0}
