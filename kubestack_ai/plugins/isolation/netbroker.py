"""The plugin host's network, opened by the worker: name resolution and TCP connections
to the target's endpoints only, each checked, then handed over (``SCM_RIGHTS``).

The host runs in an empty network namespace: without the worker it reaches nothing.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from ..models import MiddlewareTarget, split_endpoint


@dataclass
class NetPolicy:
    """The endpoints of one target, resolved by the worker at the start of the run."""

    names: dict[str, int] = field(default_factory=dict)
    """Host name (or literal address) -> how many endpoints name it."""
    allowed: set[tuple[str, int]] = field(default_factory=set)
    """(address, port) pairs the host may connect to."""
    refused: list[str] = field(default_factory=list)
    target: MiddlewareTarget | None = None
    asked_topology: bool = False

    @classmethod
    def for_target(cls, target: MiddlewareTarget) -> NetPolicy:
        pol = cls(target=target)
        for ep in target.endpoints:
            host, port = split_endpoint(ep)
            pol.names[host] = pol.names.get(host, 0) + 1
            pol.allowed.add((host, port))
            try:
                for *_, sa in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
                    pol.allowed.add((str(sa[0]), port))
            except OSError:
                pass  # the connect will say the name does not resolve
        return pol

    def _topology(self, timeout: float) -> None:
        if not self.asked_topology and self.target is not None:
            # a Sentinel's master, a Cluster's node: allowed when the target's own
            # topology names it (asked by the worker, once per run)
            self.asked_topology = True
            from .topology import named_addresses

            self.allowed |= named_addresses(self.target, timeout)

    def resolve(self, host: str, timeout: float = 5.0) -> dict[str, Any]:
        if host not in self.names and not any(h == host for h, _ in self.allowed):
            self._topology(timeout)
        if host not in self.names and not any(h == host for h, _ in self.allowed):
            self.refused.append(f"resolve {host}")
            return {"ok": False, "error": f"{host}: not one of the target's endpoints (the "
                    "plugin host resolves only those)"}
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as e:
            return {"ok": False, "error": f"{host}: {e}"}
        return {"ok": True, "addresses": [[int(f), list(sa[:2])] for f, _, _, _, sa in infos]}

    def connect(self, host: str, port: int, family: int, timeout: float
                ) -> tuple[dict[str, Any], socket.socket | None]:
        where = f"{host}:{port}"
        if (host, port) not in self.allowed:
            self._topology(timeout)
        if (host, port) not in self.allowed:
            self.refused.append(f"connect {where}")
            return {"ok": False, "errno": 1,
                    "error": f"connection to {where} refused by the plugin host's network "
                             "policy: not one of the target's endpoints"}, None
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            s.connect((host, port))
            s.setblocking(True)
        except OSError as e:
            s.close()
            msg = e.strerror or str(e) or type(e).__name__
            return {"ok": False, "errno": e.errno or 110, "error": msg}, None
        return {"ok": True}, s
