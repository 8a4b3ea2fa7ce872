"""One pipelined round trip per node: everything the chosen categories read."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..logcontext import get_logger
from .constants import CONFIG_KEYS, SELF_CLIENT_NAME
from .keyscan import KeySample

log = get_logger(__name__)


@dataclass
class NodeData:
    """What one Redis server answered. ``errors`` names the commands it refused."""

    addr: str
    info: dict[str, Any]
    config: dict[str, str] = field(default_factory=dict)
    slowlog: list[list[Any]] = field(default_factory=list)
    """Raw SLOWLOG GET entries, newest first, unchecked (see :func:`slow_entries`)."""
    clients: list[dict[str, str]] = field(default_factory=list)
    latency: list[list[Any]] = field(default_factory=list)
    latency_history: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """LATENCY HISTORY per event of LATENCY LATEST: (unix time, ms), at most 160 each."""
    cluster_info: dict[str, Any] | None = None
    cluster_nodes: dict[str, dict[str, Any]] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    fetched_at: float = field(default_factory=time.time)
    second: dict[str, Any] | None = None
    """INFO read again a short interval later, when a counter needed a rate and no
    history held one (see view.NodeView.rate); None when not taken."""
    second_at: float = 0.0
    keys: KeySample | None = None
    """A bounded SCAN sample (memory category, masters only; see keyscan.py)."""
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    """What the checks derive from these replies once per run (view.NodeView caches
    here: every category builds its own views of the same data)."""


def fetch_node(client: Any, addr: str, categories: tuple[str, ...], *, slowlog_entries: int,
               cluster: bool) -> NodeData:
    """INFO all, CONFIG GET, SLOWLOG GET, LATENCY LATEST, CLIENT LIST, CLUSTER INFO/NODES
    (as the categories need them) in one pipeline. Raises redis-py's connection errors;
    a refused command (ACL, renamed) is recorded in ``errors`` and the rest still used."""
    cats = set(categories)
    pipe = client.pipeline(transaction=False)
    names = ["info"]
    pipe.info("all")
    if cats & {"memory", "persistence", "performance"}:
        names.append("config")
        pipe.config_get(*CONFIG_KEYS)
    if "performance" in cats:
        names += ["slowlog", "latency"]
        # raw: redis-py's slowlog parser keeps bytes under decode_responses
        pipe.execute_command("SLOWLOG", "GET", slowlog_entries)
        pipe.execute_command("LATENCY LATEST")
    if "connection" in cats:
        names.append("clients")
        pipe.client_list()
    if cluster:
        names += ["cluster_info", "cluster_nodes"]
        pipe.execute_command("CLUSTER INFO")
        pipe.execute_command("CLUSTER NODES")
    replies = pipe.execute(raise_on_error=False)
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, reply in zip(names, replies, strict=True):
        if isinstance(reply, Exception):
            if name == "info":
                raise reply
            errors[name] = str(reply)
        else:
            out[name] = reply
    if "config" in errors and "wrong number of arguments" in errors["config"]:
        # Redis < 7 takes one pattern per CONFIG GET: a second round trip, all settings
        try:
            out["config"] = client.config_get("*")
            del errors["config"]
        except Exception as e:  # refused as well: keep the error, the checks degrade
            errors["config"] = str(e)
    clients = [c for c in out.get("clients", ()) if c.get("name") != SELF_CLIENT_NAME]
    latency_history = _latency_history(client, out.get("latency") or [], errors)
    return NodeData(addr=addr, info=out["info"], config=out.get("config") or {},
                    latency_history=latency_history,
                    slowlog=out.get("slowlog") or [], clients=clients,
                    latency=out.get("latency") or [], cluster_info=out.get("cluster_info"),
                    cluster_nodes=out.get("cluster_nodes"), errors=errors)



def _latency_history(client: Any, latest: list[list[Any]],
                     errors: dict[str, str]) -> dict[str, list[tuple[int, int]]]:
    """One more round trip, only when events exist: every event's samples (the spike
    count and average, not only the worst)."""
    events = [str(e[0]) for e in latest if e]
    if not events:
        return {}
    pipe = client.pipeline(transaction=False)
    for ev in events:
        pipe.execute_command("LATENCY HISTORY", ev)
    out: dict[str, list[tuple[int, int]]] = {}
    for ev, reply in zip(events, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(reply, Exception):
            errors["latency_history"] = str(reply)
            continue
        out[ev] = [(int(s[0]), int(s[1])) for s in reply if len(s) >= 2]
    return out


def slow_entries(raw: list[Any]) -> Iterator[list[Any]]:
    """The well-formed entries of a raw SLOWLOG GET reply, in its order (newest first),
    checked as they are read: a run with history reads only the few newest."""
    return (e for e in raw if isinstance(e, list) and len(e) >= 4)


def slow_entry(e: list[Any]) -> tuple[int, int, int, list[Any], str]:
    """A raw SLOWLOG GET entry -> (id, unix time, usec, args, client address).

    Entries are kept raw and read only as far as a check needs: a full slow log is
    thousands of entries."""
    args, addr = slow_args_addr(e)
    return int(e[0]), int(e[1]), int(e[2]), args, addr


def slow_args_addr(e: list[Any]) -> tuple[list[Any], str]:
    """(args, client address) of a raw SLOWLOG GET entry. Redis Enterprise inserts a
    complexity field before the args."""
    shift = 0 if isinstance(e[3], list) else 1
    args = e[3 + shift] if len(e) > 3 + shift else []
    addr = e[4 + shift] if len(e) > 4 + shift else ""
    return args, str(addr or "")
