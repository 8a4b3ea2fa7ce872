"""RedisPlugin: connect (standalone, Sentinel, Cluster), one pipelined fetch per node,
one check module per category, whitelisted actions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..base import MiddlewarePlugin, Run, category
from ..deadline import Deadline
from ..errors import ActionRefusedError, ConfigError, PluginError
from ..execution import ActionSpec
from ..logcontext import get_logger
from ..models import MiddlewareTarget, Mode, PluginConfig, PluginInfo, Severity
from ..rates import second_reading
from .actions import ACTIONS as ACTION_FUNCS
from .actions import SPECS as ACTION_SPECS
from .checks import (
    cluster,
    connection,
    memory,
    performance,
    persistence,
    replication,
    sentinel,
)
from .connection import ClientCache, Credentials, connection_key
from .constants import (
    ACTIONS,
    DANGEROUS_ACTIONS,
    DEFAULTS,
    NODE_TIMEOUT,
    TARGET_OPTIONS,
)
from .keyscan import previous_state, scan_run
from .topology import Connector, Topology, is_local
from .view import NodeView, flush, wants_second_reading

log = get_logger(__name__)

INFO = PluginInfo(
    id="redis-diagnostics", name="Redis diagnostics", version="1.0.0",
    description="Memory, connections, replication, persistence and performance of Redis "
                "(standalone, Sentinel, Cluster), with MEMORY DOCTOR and LATENCY DOCTOR rules.",
    capabilities=("health-check", "metrics", "diagnose", "execute"), author="KubeStack AI",
    actions=ACTIONS, dangerous_actions=DANGEROUS_ACTIONS,
)


class RedisPlugin(MiddlewarePlugin):
    def __init__(self) -> None:
        super().__init__()
        self._cache = ClientCache()
        self._connectors: dict[str, Connector] = {}
        self._conn: Connector | None = None

    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "redis"

    def supported_versions(self) -> list[str]:
        return [">=5.0"]

    @classmethod
    def known_thresholds(cls) -> frozenset[str]:
        return frozenset(DEFAULTS)

    @classmethod
    def target_options(cls) -> dict[str, Any]:
        return TARGET_OPTIONS

    def init(self, deadline: Deadline, config: PluginConfig) -> None:
        self.check_thresholds(config.thresholds)  # a bad plugin config fails at init
        super().init(deadline, config)

    def stop(self, deadline: Deadline) -> None:
        self._cache.close_all()
        self._connectors.clear()
        self._conn = None

    # -- connection ---------------------------------------------------------------------

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        creds = Credentials.of(target)
        # one Connector per connection settings and credentials (fingerprint only: no
        # secret in the key), shared by targets that name the same server the same way;
        # its clients are reused run after run
        key = connection_key(target, creds)
        conn = self._connectors.get(key)
        if conn is None:
            timeouts = self.config.timeouts
            conn = Connector(
                target, creds, self._cache,
                # per node and sentinel, not the whole budget: they are asked at once,
                # and a hung one must cost this, not the diagnosis
                socket_timeout=float(self.option("socket_timeout",
                                                 min(NODE_TIMEOUT, timeouts.diagnose))),
                connect_timeout=float(self.option("connect_timeout", timeouts.connect)),
                fresh_seconds=float(self.option("ping_skip_seconds", 1.0)))
            if len(self._connectors) >= 256:
                self._connectors.pop(next(iter(self._connectors)))
            self._connectors[key] = conn
        conn.target = target
        conn.connect(deadline)
        self._conn = conn
        self.target = target

    def disconnect(self, deadline: Deadline) -> None:
        """Clients stay cached for the next diagnosis; stop() closes them."""
        self._conn = None

    # -- diagnosis ----------------------------------------------------------------------

    def prepare(self, run: Run) -> None:
        assert self._conn is not None
        n = int(run.threshold("slowlog_entries", DEFAULTS["slowlog_entries"]))
        topo = self._conn.fetch(run.categories, run.deadline, n)
        run.data["topology"] = topo
        if topo.mode is not Mode.CLUSTER and self._conn.primary in topo.unreachable:
            # reachable at connect time (or moments before), gone now
            addr = self._conn.primary
            err = topo.unreachable.pop(addr)
            hung = "did not answer within" in err
            run.finding("redis.connection.unreachable", Severity.CRITICAL,
                        f"No answer within {topo.node_timeout:g} s: {addr}" if hung
                        else f"Cannot connect: {addr}",
                        evidence={"endpoints": [addr], "error": err},
                        suggestion="Check that the server runs and listens on this address.")
        self._second_reading(run, topo)
        self._sample_keys(run, topo)

    def _sample_keys(self, run: Run, topo: Topology) -> None:
        """Big keys and expired keys still held: a bounded SCAN on each master."""
        assert self._conn is not None
        max_keys = int(run.threshold("bigkeys_scan_keys", DEFAULTS["bigkeys_scan_keys"]))
        if "memory" not in run.categories or max_keys <= 0:
            return
        budget = run.threshold("bigkeys_scan_ms", DEFAULTS["bigkeys_scan_ms"]) / 1000.0
        # without history (a one-off diagnosis) no later run resumes the walk: a keyspace
        # up to bigkeys_full_scan_keys is walked whole, in at most a quarter of the time left
        alone = not run.history
        full = int(run.threshold("bigkeys_full_scan_keys", DEFAULTS["bigkeys_full_scan_keys"]))
        label = topo.mode is not Mode.STANDALONE
        for addr, d in topo.data.items():
            if str(d.info.get("role", "master")) != "master" or run.deadline.expired:
                continue
            client = self._conn.client(addr)
            try:
                dbsize = int(client.dbsize())  # of the db SCAN walks (the target's)
            except Exception as e:  # refused (ACL): walked as a large keyspace
                log.info("redis-diagnostics %s: DBSIZE on %s: %s", run.target.name, addr, e)
                dbsize = 1 << 62
            whole = max(max_keys, full) if alone else max_keys
            seconds = run.deadline.remaining() / 4
            d.keys = scan_run(client, previous_state(
                run.history, addr if label else None), run_id=str(d.info.get("run_id", "")),
                dbsize=dbsize, now=time.time(), max_keys=max_keys, whole_keys=whole,
                max_seconds=seconds if dbsize <= whole else min(budget, seconds))

    def _second_reading(self, run: Run, topo: Topology) -> None:
        """Read INFO again ``rate_sample_seconds`` later on the nodes where a counter
        moved since start and no stored history gives it a window (or where the RSS must
        be confirmed): rates.py then judges the counter over that short window."""
        assert self._conn is not None
        label = topo.mode is not Mode.STANDALONE
        wanted = [addr for addr, d in topo.data.items()
                  if wants_second_reading(NodeView(run, d, addr if label else None, False))]
        if not wanted:
            return
        conn = self._conn

        def read() -> int:
            for addr in wanted:
                d = topo.data[addr]
                d.second, d.second_at = conn.client(addr).info("all"), time.time()
            return len(wanted)

        seconds = run.threshold("rate_sample_seconds", DEFAULTS["rate_sample_seconds"])
        try:
            second_reading(read, seconds, run.deadline)
        except Exception as e:  # the first reading stands: rates say "since start"
            log.info("redis-diagnostics %s: second reading failed: %s", run.target.name, e)

    @staticmethod
    def _topology(run: Run) -> Topology:
        topo: Topology | None = run.data.get("topology")
        if topo is None:
            raise ConfigError("no data was fetched (see _prepare)")
        return topo

    def _per_node(self, run: Run, check: Any) -> None:
        topo = self._topology(run)
        label = topo.mode is not Mode.STANDALONE
        views = [NodeView(run, d, addr if label else None, is_local(addr))
                 for addr, d in topo.data.items()]
        if not run.data.get("counters_recorded"):
            # counters whose trend matters, whatever categories were chosen: history
            # compares them run to run (a restart, a new run_id, resets them)
            run.data["counters_recorded"] = True
            for v in views:
                v.metrics(v.counters())
        for v in views:
            check(v)
        flush(run, views)

    @category("memory")
    def check_memory(self, run: Run) -> None:
        self._per_node(run, memory.check)

    @category("connection")
    def check_connection(self, run: Run) -> None:
        self._per_node(run, connection.check)

    @category("replication")
    def check_replication(self, run: Run) -> None:
        self._per_node(run, replication.check)

    @category("persistence")
    def check_persistence(self, run: Run) -> None:
        self._per_node(run, persistence.check)

    @category("performance")
    def check_performance(self, run: Run) -> None:
        self._per_node(run, performance.check)

    @category("cluster")
    def check_cluster(self, run: Run) -> None:
        topo = self._topology(run)
        if topo.mode is Mode.CLUSTER:
            cluster.check(run, topo)
            return
        for addr, d in topo.data.items():
            if int(d.info.get("cluster_enabled", 0)):
                run.finding("redis.cluster.mode_hint", Severity.INFO,
                            f"{addr} is a cluster node diagnosed alone",
                            evidence={"node": addr, "cluster_enabled": 1},
                            suggestion="Diagnose with --mode cluster to judge the whole "
                                       "cluster (state, slots, every node).")

    @category("sentinel")
    def check_sentinel(self, run: Run) -> None:
        topo = self._topology(run)
        if topo.mode is Mode.SENTINEL:
            sentinel.check(run, topo)
            for addr, err in sorted(topo.unreachable.items()):
                run.finding("redis.sentinel.replica_unreachable", Severity.WARNING,
                            f"Replica {addr} known to the sentinels is unreachable",
                            evidence={"node": addr, "error": err},
                            suggestion="Start the replica; failover needs a healthy one.")

    # -- actions ------------------------------------------------------------------------

    def action_specs(self) -> Mapping[str, ActionSpec]:
        return ACTION_SPECS

    def execute(self, deadline: Deadline, action: str, params: Mapping[str, Any]) -> Any:
        fn = ACTION_FUNCS.get(action)
        if fn is None or action not in INFO.actions:
            raise ActionRefusedError(INFO.id, action, "no such action")
        conn = self._conn
        if conn is None or conn.primary is None:
            raise ConfigError("execute called before connect")
        if conn.target.mode is not Mode.CLUSTER:
            log.info("redis-diagnostics %s: %s on %s", conn.target.name, action, conn.primary)
            return fn(conn.client(conn.primary), params)
        wanted = params.get("node")
        results = {}
        for addr, node in conn.nodes.items():
            if wanted and addr != wanted:
                continue
            if not wanted and "master" not in str(node.get("flags", "")):
                continue
            deadline.check(f"{action} on {addr}")
            log.info("redis-diagnostics %s: %s on %s", conn.target.name, action, addr)
            try:
                results[addr] = fn(conn.client(addr), params)
            except PluginError:
                raise  # bad parameters: the same on every node
            except Exception as e:  # one node down must not hide what the others did
                conn.drop(addr)
                results[addr] = {"error": conn.creds.redact(f"{type(e).__name__}: {e}")}
        if wanted and not results:
            raise ConfigError(f"node {wanted!r} is not in the cluster (known: {', '.join(conn.nodes)})")
        return {"nodes": results}
