"""A Redis Sentinel target diagnosed in a plugin host: the master and replica the
sentinels name are reachable (asked by the worker of the sentinels themselves); any
other address is not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack_ai.plugins import MiddlewareTarget, PluginConfig
from kubestack_ai.plugins.isolation import HostPool, locate, probe
from kubestack_ai.plugins.isolation.netbroker import NetPolicy
from tests.conftest import require
from tests.redis.util import Servers, start_sentinel_set


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], int, int]]:
    import shutil

    require(shutil.which("redis-server") is not None, "redis-server binary")
    servers = Servers(Path(tmp_path_factory.mktemp("sentinel")))
    try:
        master, replica, sents = start_sentinel_set(servers)
        yield [s.addr for s in sents], master.port, replica.port
    finally:
        servers.stop_all()


def test_sentinel_named_master_and_replica_are_reachable_from_the_host(
        sentinels: tuple[list[str], int, int]) -> None:
    require(next(x for x in probe() if x.name == "network").active, "a network namespace")
    addrs, master, replica = sentinels
    t = MiddlewareTarget(type="redis", name="sentinel-set", endpoints=tuple(addrs),
                         mode="sentinel", options={"master_name": "mymaster"})
    pool = HostPool()
    try:
        r = pool.run("diagnose", locate("redis-diagnostics", True),
                     PluginConfig(isolation="process"), 0, t)
    finally:
        pool.close()
    assert r.outcome == "completed", r.errors
    assert not any("network policy" in e for e in r.errors.values()), r.errors
    assert r.resources is not None and "refused_network" not in r.resources
    policy = NetPolicy.for_target(t)
    for port in (master, replica):
        answer, sock = policy.connect("127.0.0.1", port, 2, 2.0)
        assert answer == {"ok": True} and sock is not None
        sock.close()
    assert policy.connect("127.0.0.1", 6379, 2, 2.0)[0]["error"] == (
        "connection to 127.0.0.1:6379 refused by the plugin host's network policy: not one "
        "of the target's endpoints")
