"""The fleet's members: which targets of ``ksa_target_latest`` are the fleet's.

The beat that schedules the fleet declares it (``set_fleet``, on start and on every
change of the fleet file): one row per target with its interval and endpoints. Then:

- the fleet's pages, counts, ``/metrics`` and notifications read the members' latest
  rows only; a run of any other target (``ksa diagnose`` by hand) is *one-off*: shown
  apart (``adhoc=True``), never stale (nothing schedules it), aged out by
  ``prune_adhoc`` (the retention task) and forgotten at once by ``forget``;
- a target that leaves the fleet leaves the view at once (its latest row is deleted; its
  runs stay in the history under retention): ``set_fleet`` returns its key, for the
  notifier to resolve its alert;
- a member is stale once its last run is older than twice its interval from the fleet
  file (one run is enough to tell);
- ``fleet_key_for`` names the member that has an endpoint, so that a one-off diagnosis
  of a fleet target's server is stored under that target, not beside it.

Until a fleet has been declared (a store used without ``ksa run``) every target is the
fleet's, and staleness is guessed from the gap between a target's last two runs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, exists, false, insert, select

from kubestack_ai.plugins.models import utcnow

from ._base import Part, short_key
from .errors import StorageError
from .models import CachedResultRow, FleetMemberRow, RollupRow, RunRow, TargetLatestRow

STALE_FACTOR = 2
"""A target is stale once its last run is older than this many intervals."""
_M = FleetMemberRow
_L = TargetLatestRow
_CHUNK = 500
_LOOPBACK = {"localhost", "::1", "[::1]", "127.0.0.1"}


@dataclass(frozen=True, slots=True)
class FleetMember:
    """One target of the fleet file, as the store keeps it."""

    key: str
    type: str
    endpoints: tuple[str, ...]
    interval: float
    """Seconds between its diagnoses."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which latest rows one read sees, and when each is stale."""

    declared: bool
    """A fleet has been declared: only its members are the fleet."""
    adhoc: bool = False
    """The one-off targets instead of the fleet's."""

    @property
    def source(self) -> Any:
        return _L.__table__.outerjoin(_M.__table__, _M.target_key == _L.target_key)

    def where(self) -> list[Any]:
        if not self.declared:
            return [false()] if self.adhoc else []
        return [_M.target_key.is_(None)] if self.adhoc else [_M.target_key.is_not(None)]

    @property
    def stale_ts(self) -> Any:
        """Unix seconds after which a row is stale (NULL: never)."""
        if not self.declared:
            return _L.stale_ts
        return _L.started_ts + STALE_FACTOR * _M.interval_s


_ANY_MEMBER = select(_M.target_key).limit(1)


def scope(c: Connection, adhoc: bool = False) -> Scope:
    return Scope(c.execute(_ANY_MEMBER).first() is not None, adhoc)


def endpoint_id(endpoint: str) -> str:
    """``host:port`` compared as one server: host in lower case, loopback names as one."""
    host, sep, port = endpoint.strip().rpartition(":")
    if not sep:
        host, port = port, ""
    host = host.lower()
    return f"{'127.0.0.1' if host in _LOOPBACK else host}:{port}"


class Members(Part):
    """The declared fleet (``ksa_fleet_member``) and the one-off targets beside it."""

    def set_fleet(self, members: Iterable[FleetMember]) -> list[str]:
        """Declare the fleet (replacing the one before, in one transaction). Returns the
        keys of the targets that left it, whose latest rows are deleted (their runs stay
        in the history)."""
        now = utcnow()
        rows = {short_key(m.key): dict(target_key=short_key(m.key), type=m.type,
                                       endpoints=json.dumps(list(m.endpoints)),
                                       interval_s=float(m.interval), declared_at=now)
                for m in members}

        def fn(c: Connection) -> list[str]:
            old = set(c.execute(select(_M.target_key)).scalars())
            gone = sorted(old - set(rows))
            c.execute(delete(_M))
            values = list(rows.values())
            for i in range(0, len(values), _CHUNK):
                c.execute(insert(_M), values[i:i + _CHUNK])
            for i in range(0, len(gone), _CHUNK):
                c.execute(delete(_L).where(_L.target_key.in_(gone[i:i + _CHUNK])))
            return gone
        return self._core(fn, write=True, what="set_fleet")

    def fleet_members(self) -> dict[str, FleetMember]:
        """The declared fleet by key (empty: none declared)."""
        q = select(_M.target_key, _M.type, _M.endpoints, _M.interval_s)
        return self._core(lambda c: {k: FleetMember(k, t, tuple(json.loads(e)), i)
                                     for k, t, e, i in c.execute(q)}, what="fleet_members")

    def fleet_key_for(self, type: str, endpoints: Iterable[str]) -> str | None:
        """The key of the fleet's target of this type that has one of ``endpoints``."""
        wanted = {endpoint_id(e) for e in endpoints}
        q = select(_M.target_key, _M.endpoints).where(_M.type == type).order_by(_M.target_key)
        for key, eps in self._core(lambda c: c.execute(q).all(), what="fleet_key_for"):
            if wanted & {endpoint_id(e) for e in json.loads(eps)}:
                return str(key)
        return None

    def forget(self, target_key: str) -> int:
        """Delete a one-off target: its latest row, runs, cached results and rollups (the
        audit log keeps every attempt). Returns how many runs. A fleet target is refused:
        it would be back with its next run."""
        tk = short_key(target_key)

        def fn(c: Connection) -> int:
            if c.execute(select(_M.target_key).where(_M.target_key == tk)).first():
                raise StorageError(f"{target_key} is in the fleet: remove it from the fleet "
                                   "file first (its next run would bring it back)")
            c.execute(delete(_L).where(_L.target_key == tk))
            c.execute(delete(CachedResultRow).where(CachedResultRow.target_key == tk))
            c.execute(delete(RollupRow).where(RollupRow.target_key == tk))
            return int(c.execute(delete(RunRow).where(RunRow.target_key == tk)).rowcount)
        return self._core(fn, write=True, passthrough=(StorageError,), what="forget")

    def prune_adhoc(self, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
        """One-off targets whose last run is older than ``older_than`` leave the view
        (their runs stay under the history's retention). Nothing while no fleet has been
        declared (every target is the fleet's then). Returns how many."""
        cutoff = ((now or utcnow()) - older_than).timestamp()
        member = exists().where(_M.target_key == _L.target_key)
        stmt = delete(_L).where(~member, _L.started_ts < cutoff)

        def fn(c: Connection) -> int:
            if not scope(c).declared:
                return 0
            return int(c.execute(stmt).rowcount)
        return self._core(fn, write=True, what="prune_adhoc")
