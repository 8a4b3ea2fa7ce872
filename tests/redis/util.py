"""Helpers: redis-server processes of our own on free loopback ports.

Each server lives in a temp dir and is stopped by the fixture that started it (by its
own Popen handle, never by name): the machine's shared Redis on 6379 is never touched.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kubestack_ai.plugins import MiddlewareTarget
from kubestack_ai.plugins.redis.connection import quiet_handshake

from ..conftest import free_port, require

__all__ = ["Servers", "codes", "free_port", "require", "target", "wait_for"]






def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cluster_port() -> int:
    """A free port P <= 55535 whose bus port P + 10000 is free too (Redis Cluster's rule)."""
    for _ in range(200):
        p = random.randint(20000, 45000)
        if _bindable(p) and _bindable(p + 10000):
            return p
    raise RuntimeError("no free port pair for a cluster node")


class RedisProc:
    def __init__(self, tmp: Path, *args: str, sentinel: bool = False,
                 conf: str | None = None, tls: dict[str, str] | None = None) -> None:
        self.port = cluster_port() if "--cluster-enabled" in args else free_port()
        self.dir = tmp / f"r{self.port}"
        self.dir.mkdir(parents=True)
        if sentinel:
            cfg = self.dir / "sentinel.conf"
            cfg.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n{conf or ''}")
            cmd = ["redis-server", str(cfg), "--sentinel"]
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(self.dir), *args]
        self.tls = tls
        if tls:  # TLS only: the plain port is closed
            cmd[1:3] = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", tls["cert"],
                        "--tls-key-file", tls["key"], "--tls-ca-cert-file", tls["ca"],
                        "--tls-auth-clients", "no"]
        self.log = open(self.dir / "log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.addr = f"127.0.0.1:{self.port}"
        self.password: str | None = next((args[i + 1] for i, a in enumerate(args)
                                          if a == "--requirepass"), None)
        try:
            self.wait_up()
        except BaseException:
            self.stop()
            raise

    def client(self, **kw: Any) -> redis.Redis:
        # no retries: redis-py's default backoff turns a stopped server into seconds of sleep
        if self.tls:
            kw.update(ssl=True, ssl_ca_certs=self.tls["ca"])
        # and no handshake extras a Redis 7.0 refuses (each an ERR in INFO errorstats,
        # which the plugin judges): the tests' clients must not seed error replies
        return redis.Redis(port=self.port, password=self.password, decode_responses=True,
                           socket_timeout=5, retry=Retry(NoBackoff(), 0), **quiet_handshake(), **kw)

    def wait_up(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.dir / 'log').read_text()[-500:]}")
            try:
                with self.client() as c:
                    c.ping()
                return
            except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError):
                return  # it answers
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not answer in {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:  # SHUTDOWN NOSAVE: a server whose snapshots fail would refuse SIGTERM's save
                with self.client() as c:
                    c.shutdown(nosave=True)
            except redis.RedisError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Servers:
    """Starts servers for a test module and stops exactly those."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.started: list[RedisProc] = []

    def start(self, *args: str, **kw: Any) -> RedisProc:
        p = RedisProc(self.tmp, *args, **kw)
        self.started.append(p)
        return p

    def stop_all(self) -> None:
        for p in self.started:
            p.stop()


def target(*endpoints: str, **kw: Any) -> MiddlewareTarget:
    return MiddlewareTarget(type="redis", endpoints=endpoints, **kw)


def codes(result: Any) -> dict[str, Any]:
    return {f.code: f for f in result.findings}


def wait_for(pred: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def start_sentinel_set(servers: Servers, failover_timeout_ms: int = 60000
                       ) -> tuple[RedisProc, RedisProc, list[RedisProc]]:
    """A master, its replica (link up) and three sentinels (quorum 2, down after 1 s)
    that know each other and the replica."""
    master = servers.start("--repl-diskless-sync-delay", "0")
    replica = servers.start("--replicaof", "127.0.0.1", str(master.port))
    conf = (f"sentinel monitor mymaster 127.0.0.1 {master.port} 2\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            f"sentinel failover-timeout mymaster {failover_timeout_ms}\n")
    sentinels = [servers.start(sentinel=True, conf=conf) for _ in range(3)]

    def settled() -> bool:
        for s in sentinels:
            with s.client() as c:
                m = c.execute_command("SENTINEL MASTER", "mymaster")
                if m["num-other-sentinels"] != 2 or m["num-slaves"] != 1:
                    return False
        with replica.client() as c:
            return bool(c.info("replication")["master_link_status"] == "up")

    wait_for(settled, 30, "sentinels to discover each other and the replica", every=0.25)
    return master, replica, sentinels


def start_cluster(servers: Servers, masters: int, replicas: int) -> list[RedisProc]:
    """A Cluster (cluster-node-timeout 1 s) with ``replicas`` per master, every node
    agreeing on the layout and every replica's link up."""
    import shutil

    require(shutil.which("redis-cli") is not None, "redis-cli is needed to create a cluster")
    nodes = [servers.start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                           "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay", "0")
             for _ in range(masters * (1 + replicas))]
    subprocess.run(["redis-cli", "--cluster", "create", *(n.addr for n in nodes),
                    "--cluster-replicas", str(replicas), "--cluster-yes"],
                   check=True, capture_output=True, timeout=60)

    def ok() -> bool:
        for n in nodes:
            with n.client() as c:
                info = c.execute_command("CLUSTER INFO")
                if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != len(nodes):
                    return False
                if replicas and sum(1 for v in c.execute_command("CLUSTER NODES").values()
                                    if "slave" in v["flags"]) != masters * replicas:
                    return False
                repl = c.info("replication")
                if repl["role"] == "slave" and repl["master_link_status"] != "up":
                    return False
        return True

    wait_for(ok, 30, "cluster_state ok and every replica linked on every node", every=0.1)
    return nodes
