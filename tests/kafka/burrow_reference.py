"""Burrow's evaluator as the tests' reference: ``calculatePartitionStatus`` and its rules
from linkedin/Burrow ``core/internal/evaluator/caching.go`` (current master), in the
order shared/ANCHORS.md gives (STOP first unless a recent broker offset is at or below
the last commit; then, only when no commit had lag 0: REWIND, STALL, WARN). Kept apart
from the plugin's code on purpose: the plugin is checked against this, not itself.

A commit is (timestamp in seconds, offset, lag) where lag is the broker's high-water
mark last known when the commit arrived, minus the offset (never negative), as Burrow's
storage module computes it.
"""

from __future__ import annotations

from collections.abc import Sequence

Commit = tuple[float, int, int]


def status(offsets: Sequence[Commit], broker_offsets: Sequence[int], current_lag: int,
           now: float) -> str:
    if not offsets:
        return "OK"
    if current_lag > 0:
        # checkIfOffsetsStopped && !checkIfRecentLagZero
        first_ts, last_ts = offsets[0][0], offsets[-1][0]
        stopped = (now - last_ts) > (last_ts - first_ts)
        last_offset = offsets[-1][1]
        recent_zero = any(b <= last_offset for b in broker_offsets)
        if stopped and not recent_zero:
            return "STOP"
        # isLagAlwaysNotZero
        if all(o[2] != 0 for o in offsets):
            if any(offsets[i][1] < offsets[i - 1][1] for i in range(1, len(offsets))):
                return "REWIND"
            if all(offsets[i][1] == offsets[i - 1][1] for i in range(1, len(offsets))):
                return "STALL"
            if all(offsets[i][2] >= offsets[i - 1][2] for i in range(1, len(offsets))):
                return "WARN"
    return "OK"


def commits_from_log(log: Sequence[tuple[float, int, int]], window: int = 10) -> list[Commit]:
    """A consumer's own commit log ``(time, offset, broker high-water mark read then)`` as
    Burrow's ring: the last ``window`` commits, each with its lag against the high-water
    mark Burrow knew when the commit arrived, i.e. the one its refresher read before
    (modelled as the previous commit's reading: a refresh once per commit interval)."""
    out = []
    for i, (t, off, hw) in enumerate(log):
        known = log[i - 1][2] if i else hw
        out.append((t, off, max(0, known - off)))
    return out[-window:]
