"""Counters since start judged as rates over a window.

A status counter (Connection_errors_max_connections, Innodb_buffer_pool_wait_free, ...)
only grows while the server lives: its lifetime total says that something happened
once, not that it happens now. A counter is judged over a window instead:

- from stored history (``run.history``, the metrics of earlier runs of this target):
  the window is the previous run of the same server life to now;
- else from two readings of this run, ``counter_sample_seconds`` apart (prepare() takes
  the second reading only when a counter that matters is non-zero: a zero counter
  cannot have moved);
- a snapshot from before a restart (its start time, reading time - ``server.uptime_s``,
  is not this life's) or with a higher value than now (FLUSH STATUS) belongs to another
  window: it is never used,
  so a rate is never negative and never spans two server lives.

The lifetime total is reported with when it last moved (the first run at which it had
its current value), or "since start" when no history says more.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..base import Run

# the status variables whose second in-run reading prepare() takes
SAMPLED = ("Connection_errors_max_connections", "Aborted_connects",
           "Innodb_buffer_pool_wait_free", "Max_used_connections", "Uptime")
# two readings whose start times (reading time - uptime) differ by more than this are
# from two server lives (clock steps and the time between reading NOW() and the status)
RESTART_SLACK_S = 120


@dataclass(frozen=True)
class CounterWindow:
    total: float
    """The counter's value now (since the server started, or since FLUSH STATUS)."""
    delta: float | None
    """Its increase over the window; None when there is no window."""
    seconds: float | None
    source: str
    """``history``, ``in-run sample`` or ``none``."""
    last_moved: str
    """An ISO time, ``before <time>`` or ``since start``."""

    @property
    def moving(self) -> bool:
        return bool(self.delta and self.delta > 0)

    def per_second(self) -> float | None:
        if self.delta is None or not self.seconds:
            return None
        return self.delta / self.seconds

    def evidence(self, prefix: str) -> dict[str, Any]:
        rate = self.per_second()
        return {f"{prefix}_total": int(self.total),
                f"{prefix}_in_window": None if self.delta is None else int(self.delta),
                "window_seconds": None if self.seconds is None else round(self.seconds, 1),
                "window_source": self.source,
                f"{prefix}_per_min": None if rate is None else round(rate * 60, 2),
                "last_moved": self.last_moved}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def same_life(run: Run, metric: str, value: float) -> list[tuple[dt.datetime, float]]:
    """Earlier readings of ``metric`` from this server life, oldest first.

    Walks back from the newest snapshot and stops at the first one from an earlier
    life: a higher uptime than now, or a higher counter value than the one after it.
    """
    uptime = _num(run.data["status"].get("Uptime"))
    started = run.data["now_utc"] - dt.timedelta(seconds=uptime) if uptime is not None else None
    out: list[tuple[dt.datetime, float]] = []
    after = value
    for snap in reversed(run.history):
        v = _num(snap.metrics.get(metric))
        if v is None:
            continue
        up = _num(snap.metrics.get("server.uptime_s"))
        restarted = (started is not None and up is not None
                     and abs((snap.at - dt.timedelta(seconds=up) - started).total_seconds())
                     > RESTART_SLACK_S)
        if restarted or v > after:
            break
        out.append((snap.at, v))
        after = v
    out.reverse()
    return out


def counter(run: Run, metric: str, status_name: str) -> CounterWindow:
    """``status_name`` now and over the window (see the module's docstring). ``metric``
    is the name the run stores it under (``run.metric``), so later runs find it."""
    total = _num(run.data["status"].get(status_name)) or 0.0
    earlier = same_life(run, metric, total)
    if earlier:
        at, prev = earlier[-1]
        secs = (run.data["now_utc"] - at).total_seconds()
        moved = _last_moved(earlier, total, run.data["now_utc"])
        return CounterWindow(total, total - prev, max(secs, 0.001), "history", moved)
    second = run.data.get("status2")
    if second is not None and status_name in second:
        v2 = _num(second[status_name]) or 0.0
        delta = v2 - total if v2 >= total else None
        return CounterWindow(v2, delta, run.data["status2_seconds"], "in-run sample",
                             "never" if v2 == 0 else "since start")
    return CounterWindow(total, None, None, "none", "never" if total == 0 else "since start")


def _last_moved(earlier: list[tuple[dt.datetime, float]], total: float,
                now: dt.datetime) -> str:
    """When the counter reached its current value: the first reading that saw it (it
    moved between the reading before and that one)."""
    if total == 0:
        return "never"
    seen = now
    for when, v in reversed(earlier):
        if v < total:
            return seen.isoformat(timespec="seconds")
        seen = when
    return f"before {earlier[0][0].isoformat(timespec='seconds')}"


def needs_sample(run: Run, watched: dict[str, str]) -> bool:
    """True when a watched counter is non-zero and no history gives it a window.
    ``watched`` maps a status name to the metric it is stored under."""
    for status_name, metric in watched.items():
        total = _num(run.data["status"].get(status_name)) or 0.0
        if total > 0 and not same_life(run, metric, total):
            return True
    return False


def limit_reached(run: Run) -> bool:
    """The server was full at some point: Max_used_connections >= max_connections. True on
    MySQL and MariaDB alike whenever a login was refused with error 1040 (MariaDB counts
    such a refusal in Aborted_connects, not in Connection_errors_max_connections)."""
    used = _num(run.data["status"].get("Max_used_connections"))
    limit = _num(run.data["vars"].get("max_connections"))
    return used is not None and bool(limit) and used >= (limit or 0)
