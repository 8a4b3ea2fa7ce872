"""Burrow's consumer status rules (linkedin/Burrow ``core/internal/evaluator/caching.go``,
as ANCHORS.md states them), as pure functions over a window of offset readings.

Burrow's window holds the last N commits of a partition. OffsetFetch gives the current
committed offset but not when it was committed, so our window holds readings: one per
earlier run (from ``run.history``) or per in-run sample, each with its time, the
committed offset and the high-water mark. One difference follows: a group with no
active members commits nothing, so consecutive readings of the same offset are one
commit, dated when it was first seen (this is what lets STOP show; with members, each
reading stands for a commit, as an auto-committing consumer commits even when idle).

The rules, in order, for one partition (lag = high-water mark - committed, >= 0):
  1. current lag <= allowed lag: OK
  2. STOP: time since the last commit > the window's span (last - first commit), unless
     the consumer was recently caught up (a high-water mark seen <= the last commit)
  3. REWIND: an offset lower than the one before it, never regained later in the window
  4. any entry of the window with lag <= allowed lag: OK
  5. STALL: every committed offset in the window the same
  6. WARN: lag never decreases across the window
  7. otherwise OK
A group takes its worst partition; STOP, STALL and REWIND are errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .constants import OFFSETS_FORMAT, OK, REWIND, STALL, STATUS_RANK, STOP, WARN
from .model import TP, Sample


@dataclass(frozen=True, slots=True)
class Entry:
    """One commit (or reading) of a partition's window."""

    at: float
    offset: int
    lag: int
    hwm: int | None = None


def stopped(window: Sequence[Entry], now: float) -> bool:
    first, last = window[0].at, window[-1].at
    return (now - last) > (last - first)


def recently_caught_up(window: Sequence[Entry], broker_offsets: Iterable[int] = ()) -> bool:
    last = window[-1].offset
    hwms = [e.hwm for e in window if e.hwm is not None] + list(broker_offsets)
    return any(h <= last for h in hwms)


def rewound(window: Sequence[Entry]) -> bool:
    offsets = [e.offset for e in window]
    for i in range(1, len(offsets)):
        if offsets[i] < offsets[i - 1] and max(offsets[i:]) < offsets[i - 1]:
            return True
    return False


def stalled(window: Sequence[Entry]) -> bool:
    return all(e.offset == window[0].offset for e in window)


def lag_not_decreasing(window: Sequence[Entry]) -> bool:
    return all(window[i].lag >= window[i - 1].lag for i in range(1, len(window)))


def partition_status(window: Sequence[Entry], current_lag: int, now: float,
                     allowed_lag: float = 0, broker_offsets: Iterable[int] = ()) -> str:
    """Burrow's status of one partition from its window (oldest first)."""
    if not window or current_lag <= allowed_lag:
        return OK
    if stopped(window, now) and not recently_caught_up(window, broker_offsets):
        return STOP
    if rewound(window):
        return REWIND
    if any(e.lag <= allowed_lag for e in window):
        return OK
    if stalled(window):
        return STALL
    if lag_not_decreasing(window):
        return WARN
    return OK


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=STATUS_RANK.__getitem__, default=OK)


# -- readings: stored between runs, and turned into windows ------------------------------

Reading = tuple[float, int, int | None, int]
"""(at, committed offset, high-water mark or None, active members of the group)."""


def encode(sample: Sample, members: Mapping[str, int], limit: int) -> dict[str, Any]:
    """The compact form kept in ``run.metrics`` for the next run's window:
    ``{"v": 1, "at": unix_s, "g": {group: {"m": members, "p": {topic: [[p, off, hwm]]}}}}``
    (hwm -1 when unknown). At most ``limit`` partitions, so the stored result stays small."""
    groups: dict[str, Any] = {}
    n = 0
    for group in sorted(sample.committed):
        topics: dict[str, list[list[int]]] = {}
        for (topic, part), off in sorted(sample.committed[group].items()):
            if n >= limit:
                break
            hw = sample.hwm.get((topic, part))
            topics.setdefault(topic, []).append([part, off, -1 if hw is None else hw])
            n += 1
        groups[group] = {"m": int(members.get(group, 0)), "p": topics}
    return {"v": OFFSETS_FORMAT, "at": round(sample.at, 3), "g": groups}


def decode(payload: Any) -> dict[str, dict[TP, Reading]]:
    """Readings from one stored payload; anything malformed yields nothing."""
    out: dict[str, dict[TP, Reading]] = {}
    if not isinstance(payload, dict) or payload.get("v") != OFFSETS_FORMAT:
        return out
    try:
        at = float(payload["at"])
        for group, g in payload.get("g", {}).items():
            m = int(g.get("m", 0))
            parts: dict[TP, Reading] = {}
            for topic, rows in g.get("p", {}).items():
                for part, off, hw in rows:
                    parts[(topic, int(part))] = (at, int(off), None if hw < 0 else int(hw), m)
            out[group] = parts
    except (KeyError, TypeError, ValueError):
        return {}
    return out


def readings_of(sample: Sample, members: Mapping[str, int]) -> dict[str, dict[TP, Reading]]:
    return {g: {tp: (sample.at, off, sample.hwm.get(tp), int(members.get(g, 0)))
                for tp, off in offs.items()}
            for g, offs in sample.committed.items()}


def window_of(readings: Sequence[Reading]) -> list[Entry]:
    """Entries from readings (oldest first); with no active members, repeated readings of
    one offset are one commit, dated at the first."""
    entries: list[Entry] = []
    prev: Reading | None = None
    for r in readings:
        at, off, hw, members = r
        if hw is None:  # a reading without its high-water mark has no lag to judge
            continue
        if prev is not None and off == prev[1] and members == 0:
            prev = r
            continue
        entries.append(Entry(at=at, offset=off, lag=max(0, hw - off), hwm=hw))
        prev = r
    return entries
