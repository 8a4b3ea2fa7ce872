"""Counters since start, judged as rates.

A server counter (Redis ``evicted_keys``, MySQL ``Aborted_connects``) only ever grows
while the server lives: its lifetime total says something happened once, not that it is
happening. A check therefore judges the counter's *increase over a window*:

- from stored history (``run.history`` snapshots, one per earlier run) when one of the
  same server life lies within ``window_seconds``;
- else, when the server has been up for less than ``window_seconds``, from its start:
  "since start" is then recent, and the lifetime total is the increase over the uptime
  (three logins refused in a server's first minute are three in the last minute);
- else from a second reading a short in-run interval after the first (the plugin takes
  it: :func:`second_reading`), as the Kafka plugin does for consumer lag.

The window never spans two server lives and a rate is never negative: a reading from
another life (``life`` differs, e.g. Redis ``run_id``; or the uptime went down, or the
reading predates the server's start) or a counter that went down (``CONFIG RESETSTAT``,
``FLUSH STATUS``) ends the window there; the next reading starts a new one. The lifetime
total is kept as evidence with when the counter last moved (or "since start")::

    now = Reading.of(at, info, life=info["run_id"], uptime=info["uptime_in_seconds"])
    past = readings(run.history, life_key="run_id", uptime_key="uptime_in_seconds")
    r = counter_rate("evicted_keys", now, past, window_seconds=900)
    if r.needs_sample:                        # no usable history: sample again
        now2 = second_reading(read, 1.0, run.deadline)
        r = counter_rate("evicted_keys", now2, [*past, now], window_seconds=900)
    if r.moving: ...warning, evidence=r.evidence()...
    elif r.total: ...info "N since start, last moved at ..."...

Pure functions and frozen values: nothing here talks to a server.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .deadline import Deadline
from .models import Snapshot

__all__ = ["Rate", "Reading", "counter_rate", "iso_utc", "readings", "second_reading"]


@dataclass(frozen=True)
class Reading:
    """The counters of one server read at one moment."""

    at: float
    """Unix time of the reading, seconds."""
    values: Mapping[str, Any] = field(default_factory=dict)
    life: str = ""
    """Identity of the server process (Redis ``run_id``); "" when the server has none."""
    uptime: float | None = None
    """Seconds the server had been up at ``at``; None when unknown."""

    @classmethod
    def of(cls, at: float | dt.datetime, values: Mapping[str, Any], *, life: Any = "",
           uptime: Any = None) -> Reading:
        ts = at.timestamp() if isinstance(at, dt.datetime) else float(at)
        return cls(ts, values, str(life or ""), None if uptime is None else float(uptime))

    def value(self, name: str) -> float | None:
        v = self.values.get(name)
        if v.__class__ is int or v.__class__ is float:  # the usual case, checked first
            return float(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        return float(v)

    @property
    def started_at(self) -> float | None:
        """Unix time the server started, when its uptime is known."""
        return None if self.uptime is None else self.at - self.uptime

    def same_life(self, later: Reading, slack: float = 2.0) -> bool:
        """True when this reading and ``later`` come from the same server process.

        ``slack``: seconds of clock noise allowed between the two start times."""
        if self.life and later.life and self.life != later.life:
            return False
        up, later_up = self.uptime, later.uptime  # (started_at inlined: called per reading)
        if up is not None and later_up is not None:
            if later_up < up:
                return False
            if (later.at - later_up) - (self.at - up) > slack:
                return False  # ``later``'s server started after this reading was taken
        return True


def readings(history: Sequence[Snapshot], *, life_key: str = "", uptime_key: str = "",
             select: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None = None,
             ) -> list[Reading]:
    """Stored snapshots -> readings, oldest first.

    ``select`` picks the metrics of one server out of a snapshot's metrics (a cluster
    keeps each node's under ``metrics["nodes"][addr]``); None from it skips the snapshot.
    ``life_key`` / ``uptime_key`` name the metrics holding the server's identity and
    uptime (Redis: ``run_id``, ``uptime_in_seconds``; MySQL: no identity, ``Uptime``)."""
    out = []
    for snap in history:
        m = snap.metrics if select is None else select(snap.metrics)
        if m is None:
            continue
        out.append(Reading.of(snap.at, m, life=m.get(life_key, "") if life_key else "",
                              uptime=m.get(uptime_key) if uptime_key else None))
    out.sort(key=lambda r: r.at)
    return out


@dataclass(frozen=True)
class Rate:
    """A counter's movement over its window. ``seconds`` is None when no earlier reading
    of the same server life lies within the window: then ``needs_sample`` is True and
    ``delta``/``per_second`` are None (only the lifetime total is known)."""

    name: str
    total: float
    """The lifetime value now (since the server started, or since a reset)."""
    delta: float | None
    seconds: float | None
    source: str
    """``history``, ``in-run`` (the window starts at a reading of this run), ``uptime``
    (the server started within the window: the window is its uptime), or ``none``."""
    last_moved: float | None
    """Unix time of the first reading that showed the current total after a lower one;
    None when no reading shows the counter rising (it last moved before we looked)."""
    observed_since: float | None
    """Unix time of the oldest reading of this server life (what ``last_moved`` covers)."""
    reset: bool = False
    """The counter went down or the server restarted within the stored readings."""
    server_started: float | None = None

    @property
    def per_second(self) -> float | None:
        if self.delta is None or not self.seconds:
            return None
        return self.delta / self.seconds

    @property
    def needs_sample(self) -> bool:
        return self.seconds is None

    @property
    def moving(self) -> bool:
        """The counter rose within the window."""
        return bool(self.delta and self.delta > 0)

    def last_moved_text(self) -> str:
        """"2026-11-30T22:01:05Z", "before 2026-11-30T21:00:00Z", "since start" or
        "since the last reset" (the counter went down or the server restarted)."""
        if self.last_moved is not None:
            return iso_utc(self.last_moved)
        if self.observed_since is not None and self.total > 0:
            return f"before {iso_utc(self.observed_since)}"
        return "since the last reset" if self.reset else "since start"

    def window_text(self) -> str:
        if self.seconds is None:
            return "since start"
        if self.source == "uptime":
            return f"in the {self.seconds:.0f}s since the server started"
        return f"in the last {self.seconds:.1f}s"

    def evidence(self, prefix: str | None = None) -> dict[str, Any]:
        """The numbers a finding about this counter shows: lifetime total, increase and
        rate over the window, the window and its source, when it last moved."""
        p = self.name if prefix is None else prefix
        ev: dict[str, Any] = {p: _num(self.total), "last_moved": self.last_moved_text()}
        if self.seconds is not None:
            ev[f"{p}_in_window"] = _num(self.delta or 0)
            ev[f"{p}_per_second"] = round(self.per_second or 0.0, 4)
            ev["window_seconds"] = round(self.seconds, 1)
            ev["window_source"] = self.source
        if self.server_started is not None:
            ev["server_started"] = iso_utc(self.server_started)
        if self.reset:
            ev["window_reset"] = True
        return ev


def counter_rate(name: str, now: Reading, earlier: Sequence[Reading], *,
                 window_seconds: float = 900.0, in_run_since: float | None = None) -> Rate:
    """Judge counter ``name`` at ``now`` against ``earlier`` readings (any order).

    The window starts at the oldest earlier reading that is of the same server life,
    not older than ``window_seconds`` and not followed by a decrease of the counter.
    ``in_run_since``: readings at or after this time were taken by this run (the window
    source is then ``in-run``). A reading without the counter is ignored."""
    now_value = now.value(name)
    total = 0.0 if now_value is None else now_value
    # (reading, its value), each value read once: a run judges several counters over
    # the same readings
    past = sorted(((r, v) for r in earlier if r.at < now.at
                   and (v := r.value(name)) is not None), key=lambda rv: rv[0].at)
    # one walk back from now along the chain of readings of this life with no decrease
    # (a decrease or another life ends it: ``reset``), noting on the way when the
    # counter last moved (the newest rise), the oldest reading within the window (where
    # the window starts) and the oldest of the chain (what "last moved" can speak for)
    reset = False
    later, lv = now, now_value
    last_moved: float | None = None
    first: Reading | None = None
    v0 = 0.0
    oldest: Reading | None = None
    now_at = now.at
    for r, v in reversed(past):
        if (lv is not None and v > lv) or not r.same_life(later):
            reset = True
            break
        if last_moved is None and lv is not None and lv > v:
            last_moved = later.at
        if now_at - r.at <= window_seconds:
            first, v0 = r, v
        oldest = r
        later, lv = r, v
    # stored readings only (an in-run reading moments ago says nothing about the time
    # before it)
    observed = oldest.at if oldest is not None and (
        in_run_since is None or oldest.at < in_run_since) else None
    started = now.started_at
    if first is None:
        if now.uptime is not None and now.uptime <= window_seconds:
            # the server started within the window: its lifetime total (or what it
            # counted since a reset, later still) is recent
            return Rate(name, total, total, max(now.uptime, 1.0), "uptime", last_moved,
                        observed, reset, started)
        return Rate(name, total, None, None, "none", last_moved, observed, reset, started)
    source = "in-run" if in_run_since is not None and first.at >= in_run_since else "history"
    return Rate(name, total, max(total - v0, 0.0), now.at - first.at, source, last_moved,
                observed, reset, started)


_T = TypeVar("_T")


def second_reading(read: Callable[[], _T], seconds: float, deadline: Deadline,
                   *, share: float = 0.25) -> _T | None:
    """Wait ``seconds`` (at most ``share`` of the time left before ``deadline``) and call
    ``read`` (a Reading, or whatever a plugin reads several servers' counters into);
    None when the deadline leaves no time for it. ``read`` raises as it likes."""
    wait = min(seconds, deadline.remaining() * share)
    if wait <= 0 or deadline.expired:
        return None
    if deadline.cancelled:
        return None
    time.sleep(wait)
    deadline.check("second counter reading")
    return read()


@functools.lru_cache(maxsize=256)
def iso_utc(ts: float) -> str:
    """Unix time -> ``2026-11-30T22:01:05Z`` (how evidence shows a moment). Kept: a run
    shows the same few moments (server start, oldest reading) for each of its counters."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else round(v, 4)
