"""Modes: which servers one target means, how to reach them, and fetching them all.

- standalone: the first endpoint that answers.
- sentinel: the endpoints are sentinels, all asked at once for their view (MASTER,
  GET-MASTER-ADDR, CKQUORUM, SLAVES); the master is the one they name
  (``target.options["master_name"]``); master and known replicas are diagnosed.
- cluster: the endpoints are seed nodes (and the nodes the last layout named), asked at
  once: the first CLUSTER NODES answer names every node, and every node is diagnosed on
  its own connection.

Every node and sentinel gets its own short socket time-out (``node_timeout``), and they
are asked concurrently: one hung server (SIGSTOP, a full accept queue, a dropped route)
costs one time-out and becomes a finding naming it, while the rest of the topology is
still diagnosed within the budget.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..deadline import Deadline
from ..errors import AuthError, ConfigError, ConnectError
from ..logcontext import get_logger
from ..models import MiddlewareTarget, Mode, split_endpoint
from .connection import (
    ClientCache,
    Credentials,
    client_kwargs,
    connection_key,
    is_connection_error,
    is_timeout,
    map_error,
    not_redis,
    speaks_first,
)
from .fetch import NodeData, fetch_node

log = get_logger(__name__)


@dataclass
class Topology:
    mode: Mode
    master: str | None = None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, NodeData] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    sentinel: dict[str, Any] | None = None
    node_timeout: float = 0.0


@functools.lru_cache(maxsize=1024)  # asked for every node by every category, every run
def is_local(addr: str) -> bool:
    host = split_endpoint(addr)[0]
    return host == "localhost" or host == "::1" or host.startswith("127.")


class Connector:
    """The clients of one target (with its resolved credentials) and its topology."""

    def __init__(self, target: MiddlewareTarget, creds: Credentials, cache: ClientCache,
                 socket_timeout: float, connect_timeout: float, fresh_seconds: float) -> None:
        self.target = target
        self.node_timeout = socket_timeout
        self.fresh_seconds = fresh_seconds
        self.last_ok: dict[str, float] = {}
        """addr -> when a command last succeeded on it (monotonic)."""
        self.creds = creds
        self.cache = cache
        self.prefix = connection_key(target, creds)
        self._kw = client_kwargs(target, creds, sentinel=False, socket_timeout=socket_timeout,
                                 connect_timeout=connect_timeout)
        self._skw = client_kwargs(target, creds, sentinel=True, socket_timeout=socket_timeout,
                                  connect_timeout=connect_timeout)
        self.primary: str | None = None
        self.nodes: dict[str, dict[str, Any]] = {}
        self._views: dict[str, Any] | None = None
        """The sentinels' views read at connect, used by the fetch that follows."""

    def client(self, addr: str, sentinel: bool = False) -> Any:
        host, port = split_endpoint(addr)
        key = f"{self.prefix}|{'s' if sentinel else 'n'}@{addr}"
        return self.cache.get(key, host, port, self._skw if sentinel else self._kw)

    def drop(self, addr: str, sentinel: bool = False) -> None:
        self.last_ok.pop(addr, None)
        self.cache.drop(f"{self.prefix}|{'s' if sentinel else 'n'}@{addr}")

    # -- connect ------------------------------------------------------------------------

    def connect(self, deadline: Deadline) -> None:
        mode = self.target.mode
        if mode is Mode.SENTINEL:
            self._views = self._sentinel_views(deadline)
            self.primary = _master_of(self._views, self.target.options["master_name"])
            try:
                self._ping(self.primary)
            except AuthError:
                raise
            except ConnectError as e:
                # the sentinels answer: diagnose them; the master is reported down from
                # the fetch (and by the sentinels' own flags)
                log.info("sentinel master %s unreachable: %s", self.primary, e)
        elif mode is Mode.CLUSTER:
            # seeds first, then the nodes the last layout named: a stopped seed must not
            # hide the rest of the cluster
            known = [a for a in self.nodes if a not in self.target.endpoints]
            self.primary, self.nodes = self._first(deadline, self._cluster_nodes,
                                                   [*self.target.endpoints, *known])
        else:
            self.primary, _ = self._first(deadline, lambda a: self._ping(a),
                                          list(self.target.endpoints))

    def _ping(self, addr: str, sentinel: bool = False) -> Any:
        if not sentinel and time.monotonic() - self.last_ok.get(addr, -1e9) < self.fresh_seconds:
            # the pooled connection answered moments ago: the fetch that follows is the
            # check (a server gone since then is reported from there, as unreachable)
            return True
        try:
            return self.client(addr, sentinel).ping()
        except Exception as e:
            err = map_error(e, addr, self.creds, sentinel, timeout=self.node_timeout)
            if err.kind is None and not is_connection_error(e) and not isinstance(err, AuthError):
                # the server answered with an error: it is up. (MISCONF refuses even PING
                # after a failed snapshot; the persistence check reports that.)
                log.debug("redis %s answered PING with %s", addr, e)
                return False
            self.drop(addr, sentinel)
            if err.kind is None and is_timeout(e):
                # silent, or talking another protocol whose greeting has no line end
                banner = speaks_first(*split_endpoint(addr))
                if banner:
                    raise not_redis(addr, f"it speaks first ({banner[:32]!r}); Redis "
                                          "waits to be asked") from None
            raise err from None

    def _first(self, deadline: Deadline, fn: Callable[[str], Any],
               candidates: list[str]) -> tuple[str, Any]:
        """The first candidate to answer ``fn``, all asked at once: a hung one costs
        nothing while another answers."""
        if len(candidates) == 1:
            return candidates[0], fn(candidates[0])
        errors: dict[str, str] = {}
        pool = ThreadPoolExecutor(max_workers=min(8, len(candidates)),
                                  thread_name_prefix="ksa-redis-seed")
        try:
            futures: dict[Future[Any], str] = {pool.submit(_carry(fn), a): a for a in candidates}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=deadline.remaining(),
                                     return_when=FIRST_COMPLETED)
                if not done:
                    break
                for f in sorted(done, key=lambda f: candidates.index(futures[f])):
                    try:
                        return futures[f], f.result()
                    except AuthError:
                        raise
                    except ConnectError as e:
                        errors[futures[f]] = str(e)
            deadline.check("connect")
        finally:
            # the hung ones finish on their own socket time-out; nobody waits for them
            pool.shutdown(wait=False, cancel_futures=True)
        raise ConnectError("; ".join(errors[a] for a in candidates if a in errors))

    def _cluster_nodes(self, addr: str) -> dict[str, dict[str, Any]]:
        self._ping(addr)
        try:
            nodes = self.client(addr).execute_command("CLUSTER NODES")
        except Exception as e:
            if is_connection_error(e):
                raise map_error(e, addr, self.creds, timeout=self.node_timeout) from None
            raise ConfigError(f"redis {addr} is not a cluster node ({e}): use mode standalone "
                              "or sentinel") from None
        return {a: n for a, n in nodes.items()
                if not a.endswith(":0") and "noaddr" not in n.get("flags", "")
                and "handshake" not in n.get("flags", "")}

    # -- fetch --------------------------------------------------------------------------

    def fetch(self, categories: tuple[str, ...], deadline: Deadline,
              slowlog_entries: int) -> Topology:
        mode = self.target.mode
        topo = Topology(mode=mode, master=self.primary, nodes=self.nodes,
                        node_timeout=self.node_timeout)
        assert self.primary is not None
        if mode is Mode.CLUSTER:
            self._fetch_many(topo, list(self.nodes), categories, deadline, slowlog_entries, True)
        elif mode is Mode.SENTINEL:
            views, self._views = self._views, None
            topo.sentinel = views if views is not None else self._sentinel_views(deadline)
            replicas = _replicas_of(topo.sentinel)
            self._fetch_many(topo, [self.primary, *replicas], categories, deadline,
                             slowlog_entries, False)
        else:
            self._fetch_many(topo, [self.primary], categories, deadline, slowlog_entries, False)
        return topo

    def _fetch_one(self, addr: str, categories: tuple[str, ...], deadline: Deadline,
                   slowlog_entries: int, cluster: bool) -> NodeData | str:
        try:
            deadline.check(f"fetch {addr}")
            data = fetch_node(self.client(addr), addr, categories,
                              slowlog_entries=slowlog_entries, cluster=cluster)
            self.last_ok[addr] = time.monotonic()
            return data
        except Exception as e:
            self.drop(addr)
            if is_connection_error(e) or "NOAUTH" in str(e) or "WRONGPASS" in str(e):
                return str(map_error(e, addr, self.creds, timeout=self.node_timeout))
            raise

    def _fetch_many(self, topo: Topology, addrs: list[str], categories: tuple[str, ...],
                    deadline: Deadline, slowlog_entries: int, cluster: bool) -> None:
        if len(addrs) == 1:
            results = [self._fetch_one(addrs[0], categories, deadline, slowlog_entries, cluster)]
        else:
            with ThreadPoolExecutor(max_workers=min(8, len(addrs)),
                                    thread_name_prefix="ksa-redis-fetch") as pool:
                results = list(pool.map(_carry(lambda a: self._fetch_one(
                    a, categories, deadline, slowlog_entries, cluster)), addrs))
        for addr, res in zip(addrs, results, strict=True):
            if isinstance(res, str):
                topo.unreachable[addr] = res
            else:
                topo.data[addr] = res

    def _sentinel_view(self, ep: str, name: str) -> dict[str, Any]:
        pipe = self.client(ep, sentinel=True).pipeline(transaction=False)
        pipe.execute_command("SENTINEL MASTER", name)
        pipe.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", name)
        pipe.execute_command("SENTINEL CKQUORUM", name)
        pipe.execute_command("SENTINEL SLAVES", name)
        try:
            master, addr, ckq, replicas = pipe.execute(raise_on_error=False)
        except Exception as e:
            self.drop(ep, sentinel=True)
            err = map_error(e, f"sentinel {ep}", self.creds, sentinel=True,
                            timeout=self.node_timeout)
            if isinstance(err, AuthError):
                raise err from None
            return {"down": str(err)}
        if isinstance(master, Exception):
            return {"error": str(master)}
        return {
            "master": master,
            "addr": _addr(addr) if addr and not isinstance(addr, Exception) else None,
            # bool_ok turns "OK 3 usable Sentinels..." into False: only an error means no quorum
            "ckquorum": str(ckq) if isinstance(ckq, Exception) else True,
            "replicas": [] if isinstance(replicas, Exception) else replicas,
        }

    def _sentinel_views(self, deadline: Deadline) -> dict[str, Any]:
        """Every sentinel's view, asked at once (a hung sentinel costs one time-out)."""
        name = self.target.options.get("master_name")
        if not name:
            raise ConfigError("sentinel mode needs the target option master_name")
        eps = list(self.target.endpoints)
        deadline.check("sentinel views")
        if len(eps) == 1:
            views = [self._sentinel_view(eps[0], name)]
        else:
            with ThreadPoolExecutor(max_workers=min(8, len(eps)),
                                    thread_name_prefix="ksa-redis-sentinel") as pool:
                views = list(pool.map(_carry(lambda ep: self._sentinel_view(ep, name)), eps))
        answers = {ep: v for ep, v in zip(eps, views, strict=True) if "down" not in v}
        down = {ep: v["down"] for ep, v in zip(eps, views, strict=True) if "down" in v}
        return {"master_name": name, "answers": answers, "unreachable": down,
                "at": time.time()}


def _carry(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    """``fn`` run in a pool thread within the caller's log context (plugin id, target)."""
    ctx = contextvars.copy_context()
    return lambda arg: ctx.copy().run(fn, arg)


def _addr(pair: Any) -> str:
    host, port = pair[0], pair[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _master_of(view: dict[str, Any], name: str) -> str:
    """The master most sentinels name (the first sentinel's on a tie)."""
    named: list[str] = [a["addr"] for a in view["answers"].values() if a.get("addr")]
    if named:
        return max(dict.fromkeys(named), key=named.count)
    errors = [*view["unreachable"].values()]
    errors += [f"sentinel {ep} does not know master {name!r}"
               for ep, a in view["answers"].items() if not a.get("addr")]
    raise ConnectError(f"no sentinel gave the address of master {name!r}: " + "; ".join(errors))


def _replicas_of(view: dict[str, Any]) -> list[str]:
    for a in view["answers"].values():
        if "replicas" in a:
            return [f"{r['ip']}:{r['port']}" for r in a["replicas"]
                    if not (r.get("is_sdown") or r.get("is_disconnected"))]
    return []
