"""MySQL status counters judged as rates, through the shared ``plugins/rates.py``.

A status counter (Connection_errors_max_connections, Innodb_buffer_pool_wait_free, ...)
only grows while the server lives: its lifetime total says something happened once,
not that it happens now. So a counter is judged by its increase over a window: from
the metrics earlier runs stored (``run.history``, within ``rate_window_seconds``), else
from a second reading prepare() takes ``counter_sample_seconds`` after the first, and
only when a counter that matters is non-zero (a zero counter cannot have moved). A
reading from an earlier server life (MySQL has no run id: the uptime says when the
server started) or a counter that went down (FLUSH STATUS) starts a new window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ..base import Run
from ..models import Severity
from ..rates import Rate, Reading, counter_rate, readings

# the status variables of the second in-run reading (every counter judged here: one a
# second reading lacks would read as 0, a reset)
SAMPLED = ("Connection_errors_max_connections", "Aborted_connects",
           "Innodb_buffer_pool_wait_free", "Connections", "Threads_created",
           "Created_tmp_tables", "Created_tmp_disk_tables", "Select_full_join",
           "Select_range_check", "Uptime")
UPTIME = "server.uptime_s"  # the metric every run stores the uptime under


def _num(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def _reading(at: dt.datetime, status: dict[str, Any], metric: str, status_name: str
             ) -> Reading:
    return Reading.of(at, {metric: _num(status.get(status_name)) or 0.0},
                      uptime=_num(status.get("Uptime")))


def counter(run: Run, metric: str, status_name: str) -> Rate:
    """``status_name`` now and over its window. ``metric`` is the name runs store it
    under (``run.metric``), so that later runs find it in their history."""
    window = float(run.threshold("rate_window_seconds", 900.0))
    now = _reading(run.data["now_utc"], run.data["status"], metric, status_name)
    past = readings(run.history, uptime_key=UPTIME)
    rate = counter_rate(metric, now, past, window_seconds=window)
    second = run.data.get("status2")
    if rate.needs_sample and second is not None:
        secs = run.data["status2_seconds"]
        later = run.data["now_utc"] + dt.timedelta(seconds=secs)
        # the in-run window is the sampling interval, whatever rate_window_seconds says
        rate = counter_rate(metric, _reading(later, second, metric, status_name),
                            [*past, now], window_seconds=max(window, secs + 1.0),
                            in_run_since=now.at)
    return rate


def needs_sample(run: Run, watched: dict[str, str]) -> bool:
    """True when a watched counter (status name -> metric) is non-zero and no stored
    history gives it a window."""
    return any(_num(run.data["status"].get(name)) and counter(run, metric, name).needs_sample
               for name, metric in watched.items())


def limit_reached(run: Run) -> bool:
    """The server was full at some point: Max_used_connections >= max_connections. True on
    MySQL and MariaDB alike whenever a login was refused with error 1040 (MariaDB counts
    such a refusal in Aborted_connects, not in Connection_errors_max_connections)."""
    used = _num(run.data["status"].get("Max_used_connections"))
    limit = _num(run.data["vars"].get("max_connections"))
    return used is not None and bool(limit) and used >= (limit or 0)


def report(run: Run, code: str, rate: Rate, what: str, evidence: dict[str, Any],
           suggestion: str) -> None:
    """One finding for a counter judged as a rate: a warning when it rose in the window,
    else info with its lifetime total and when it last moved. Nothing when it is 0."""
    if rate.total == 0:
        return
    if rate.moving:
        per_min = (rate.per_second or 0.0) * 60
        run.finding(code, Severity.WARNING, f"{what}: {int(rate.delta or 0)} in the last "
                    f"{rate.seconds or 0:.0f} s ({per_min:.1f}/min)",
                    evidence=evidence, suggestion=suggestion)
        return
    run.finding(code, Severity.INFO, f"{what}: {int(rate.total)} since start (last moved: "
                f"{rate.last_moved_text()})"
                + (f"; none in the last {rate.seconds:.0f} s" if rate.seconds is not None else ""),
                evidence=evidence, suggestion=suggestion)


@dataclass(frozen=True)
class Share:
    """Counter ``part`` against counter ``whole`` over one window (MySQLTuner's lifetime
    ratios, judged as rates): ``part``/``whole`` are the increases in the window, None
    when no window could be had (then only the lifetime totals are known)."""

    part: Rate
    whole: Rate

    @property
    def judged(self) -> bool:
        return not (self.part.needs_sample or self.whole.needs_sample)

    @property
    def in_window(self) -> tuple[float, float]:
        return float(self.part.delta or 0.0), float(self.whole.delta or 0.0)

    def pct(self) -> float:
        part, whole = self.in_window
        return round(100.0 * part / whole, 2) if whole else 0.0

    def lifetime_pct(self) -> float:
        return round(100.0 * self.part.total / self.whole.total, 2) if self.whole.total else 0.0

    def evidence(self, part: str, whole: str) -> dict[str, Any]:
        """Both counters' lifetime totals and, when judged, their increases in the window."""
        ev: dict[str, Any] = {part: int(self.part.total), whole: int(self.whole.total),
                              "lifetime_pct": self.lifetime_pct()}
        if self.judged:
            ev.update({f"{part}_in_window": int(self.in_window[0]),
                       f"{whole}_in_window": int(self.in_window[1]), "pct": self.pct(),
                       "window_seconds": round(self.part.seconds or 0.0, 1),
                       "window_source": self.part.source})
        else:
            ev["window"] = "none: no stored run within rate_window_seconds"
        return ev

    def window_text(self) -> str:
        if not self.judged:
            return "since start"
        if self.part.source == "uptime":
            return f"in the {self.part.seconds or 0:.0f} s since the server started"
        return f"in the last {self.part.seconds or 0:.0f} s"


def share(run: Run, part: tuple[str, str], whole: tuple[str, str]) -> Share:
    """Two counters (metric name, status name) over the same window."""
    return Share(counter(run, *part), counter(run, *whole))
