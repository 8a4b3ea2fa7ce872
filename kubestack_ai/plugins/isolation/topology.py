"""The hosts a target's own topology names, asked by the worker: a plugin host may also
connect to them (a Redis Sentinel's masters, replicas and other sentinels; a Redis
Cluster's nodes). Asked of the target's endpoints with the target's credentials, through
the builtin Redis plugin's client settings (trusted code in the worker), once per run and
only when the host asks for an address the endpoints do not list.
"""

from __future__ import annotations

import socket
from typing import Any

from ..logcontext import get_logger
from ..models import MiddlewareTarget, Mode, split_endpoint

log = get_logger(__name__)


def named_addresses(target: MiddlewareTarget, timeout: float) -> set[tuple[str, int]]:
    """(address, port) of every node the topology names; empty for other targets."""
    if target.type != "redis" or target.mode not in (Mode.SENTINEL, Mode.CLUSTER):
        return set()
    import redis

    from ..redis.connection import Credentials, client_kwargs

    creds = Credentials.of(target)
    sentinel = target.mode is Mode.SENTINEL
    kw = client_kwargs(target, creds, sentinel=sentinel, socket_timeout=timeout,
                       connect_timeout=timeout)
    found: set[tuple[str, int]] = set()
    for ep in target.endpoints:
        host, port = split_endpoint(ep)
        try:
            with redis.Redis(host=host, port=port, **kw) as c:
                found |= _sentinel(c) if sentinel else _cluster(c)
        except (redis.RedisError, OSError) as e:
            log.debug("topology of %s from %s: %s", target.key, ep, creds.redact(str(e)))
    out: set[tuple[str, int]] = set()
    for host, port in found:
        out.add((host, port))
        try:
            for *_, sa in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                out.add((str(sa[0]), port))
        except OSError:
            pass
    return out


def _sentinel(c: Any) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for name, m in c.sentinel_masters().items():
        out.add((str(m["ip"]), int(m["port"])))
        for node in [*c.sentinel_slaves(name), *c.sentinel_sentinels(name)]:
            out.add((str(node["ip"]), int(node["port"])))
    return out


def _cluster(c: Any) -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for addr in c.cluster_nodes():
        host, _, port = str(addr).split("@")[0].rpartition(":")
        if host and port.isdigit():
            out.add((host, int(port)))
    return out
