"""Which Host headers ``ksa serve`` answers: a guard against DNS rebinding.

A page on another site can have its own name re-bound to 127.0.0.1 and then read the
(unauthenticated, by default) view from the visitor's browser: same origin, as far as
the browser knows. Such a request carries the other site's name as Host, so only the
names the view is served under are answered, in this order:

1. ``*`` in the allowed list: every Host (the check is off);
2. a name in the allowed list (``--allowed-host``, ``KSA_ALLOWED_HOSTS``), or under a
   ``.suffix`` there (``.example.com``: example.com and every name below it);
3. ``localhost`` and names under ``.localhost`` (browsers resolve them to loopback);
4. an IP address: a loopback one, the bind address, or any when bound to every address
   (``0.0.0.0``, ``::``): a rebinding page never sends an address, it sends its name;
5. the bind address given as a name (``--host ksa.internal``).

The port is ignored (a proxy may publish another). Anything else: 400, saying how to
allow the name. Django's ALLOWED_HOSTS and Vite's ``server.allowedHosts`` do the same.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

import tornado.web
from tornado.httputil import HTTPServerRequest
from tornado.routing import AnyMatches, Matcher, Rule, RuleRouter

ENV = "KSA_ALLOWED_HOSTS"
_WILDCARD = {"", "0.0.0.0", "::"}
_NAME = re.compile(r"^[a-z0-9_.:-]{1,253}$")


def host_name(host: str) -> str:
    """``Host`` without port, brackets and final dot, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class AllowedHosts:
    def __init__(self, bind: str, allowed: Iterable[str] = ()) -> None:
        self.bind = host_name(bind)
        self.every = False
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        for item in allowed:
            if item.strip() == "*":
                self.every = True
                continue
            name = host_name(item.strip().removeprefix("*"))
            if name.startswith("."):
                self.suffixes.append(name)
                name = name[1:]
            if name:
                self.names.add(name)

    @classmethod
    def parse(cls, bind: str, options: Iterable[str], environ: str | None) -> AllowedHosts:
        """From ``--allowed-host`` options and ``KSA_ALLOWED_HOSTS`` (commas or spaces)."""
        return cls(bind, [*options, *re.split(r"[,\s]+", environ or "")])

    def allows(self, host: str) -> bool:
        name = host_name(host)
        if self.every or name in self.names or name.endswith(tuple(self.suffixes)):
            return True
        if name == "localhost" or name.endswith(".localhost"):
            return True
        ip = _ip(name)
        if ip is not None:
            return ip.is_loopback or self.bind in _WILDCARD or ip == _ip(self.bind)
        return name == self.bind

    def guard(self, app: tornado.web.Application) -> RuleRouter:
        """``app`` for the allowed hosts; a 400 that says how to allow for the others."""
        refuse = tornado.web.Application([(r".*", _Refused)])
        return RuleRouter([Rule(_Matches(self), app), Rule(AnyMatches(), refuse)])


class _Matches(Matcher):
    def __init__(self, hosts: AllowedHosts) -> None:
        self.hosts = hosts

    def match(self, request: HTTPServerRequest) -> dict[str, object] | None:
        return {} if self.hosts.allows(request.host) else None


class _Refused(tornado.web.RequestHandler):
    def prepare(self) -> None:
        name = host_name(self.request.host)
        if _NAME.match(name):
            why = (f"Host {name!r} is not served here (a guard against DNS rebinding): "
                   f"allow it with ksa serve --allowed-host {name} or {ENV}={name}\n")
        else:  # not a name to echo
            why = ("this Host is not served here (a guard against DNS rebinding): allow a "
                   f"name with ksa serve --allowed-host NAME or {ENV}=NAME\n")
        self.set_status(400)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(why)
