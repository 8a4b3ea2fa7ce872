"""Burrow's consumer status rules (linkedin/Burrow ``core/internal/evaluator/caching.go``,
current master, as shared/ANCHORS.md states them), and the per-partition commit windows
they judge, kept from run to run.

What Burrow keeps, per partition, is a ring of the group's last N commits: the committed
offset, the commit's time, and the lag against the broker's high-water mark *last known
when the commit arrived* (Burrow refreshes broker offsets every 30 s). That is why a
healthy consumer committing on a timer shows lag 0 at some commit: it commits an offset
at or past the high-water mark Burrow saw a little earlier.

OffsetFetch gives the committed offset, not its time, so our ring is built from readings:
each run (and each in-run sample) reads the committed offsets and the high-water marks
together. A commit is recorded at the reading where it is first seen, with its lag
against this reading's high-water mark, so that the lags of a ring are comparable
whatever the time between readings (0.5 s in-run, minutes between runs): a lag taken
against the previous reading's mark instead is that lag less the messages produced
since, and it fell at every first reading after a gap, hiding lag that grew at every
commit (issue 24). A commit at or past the mark as it stood one commit interval
(``interval``: the consumers' auto.commit.interval.ms, 5 s by default) before the reading
(interpolated between the two readings; the previous one's when they are closer) is
caught up: lag 0, as Burrow records a commit at or past the last high-water mark it
refreshed. A group with active members commits even when idle (auto-commit re-commits
its position), so a reading of it at least one commit interval after its last recorded
commit stands for a commit; readings closer than that (in-run) record only offsets that
moved: a reading between two commits is no commit, and its lag, higher than at either,
would break the trend. A group without members commits nothing, so an unchanged offset
adds nothing and the ring keeps its last real commits, with their times, for STOP to
judge. The ring (not the raw readings) is carried to the next run in
``run.metrics["offsets"]``.

The rules, for one partition, over its ring (oldest first):
  1. current lag <= allowed lag: OK.
  2. STOP: now - last commit > last commit - first commit, unless a recent high-water
     mark (this reading's or the previous one's) is at or below the last committed offset.
  3. only if no commit in the ring had lag <= allowed lag, in this order:
     REWIND: any committed offset lower than the one before it;
     STALL: every committed offset the same;
     WARN: lag never decreases from one commit to the next.
  4. otherwise OK.
Burrow judges whatever its ring holds and reports the ring's ``complete`` fraction beside
the status. A group with members fills its ring by committing: one with fewer than
``minimum`` commits is sampled in-run and not judged before. A group without members
(Empty) never commits again: its ring, however short, is judged at once (one commit
that lags is STOP). A group takes its worst partition; STOP, STALL and REWIND are errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .constants import OFFSETS_FORMAT, OK, REWIND, STALL, STATUS_RANK, STOP, WARN
from .model import TP, Sample


@dataclass(frozen=True, slots=True)
class Entry:
    """One commit of a partition's ring."""

    at: float
    offset: int
    lag: int


def stopped(window: Sequence[Entry], now: float) -> bool:
    first, last = window[0].at, window[-1].at
    return (now - last) > (last - first)


def recently_caught_up(window: Sequence[Entry], broker_offsets: Iterable[int | None] = ()) -> bool:
    """Burrow's ``checkIfRecentLagZero``: a recent high-water mark at or below the last
    committed offset (the consumer was caught up within the last few refreshes)."""
    last = window[-1].offset
    return any(h is not None and h <= last for h in broker_offsets)


def rewound(window: Sequence[Entry]) -> bool:
    return any(window[i].offset < window[i - 1].offset for i in range(1, len(window)))


def stalled(window: Sequence[Entry]) -> bool:
    return all(e.offset == window[0].offset for e in window)


def lag_not_decreasing(window: Sequence[Entry]) -> bool:
    return all(window[i].lag >= window[i - 1].lag for i in range(1, len(window)))


def partition_status(window: Sequence[Entry], current_lag: int, now: float,
                     allowed_lag: float = 0, broker_offsets: Iterable[int | None] = (),
                     minimum: int = 1) -> str:
    """Burrow's status of one partition from its ring of commits (oldest first)."""
    if len(window) < max(1, minimum) or current_lag <= allowed_lag:
        return OK
    if stopped(window, now) and not recently_caught_up(window, broker_offsets):
        return STOP
    if any(e.lag <= allowed_lag for e in window):
        return OK
    if rewound(window):
        return REWIND
    if stalled(window):
        return STALL
    if lag_not_decreasing(window):
        return WARN
    return OK


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=STATUS_RANK.__getitem__, default=OK)


def consume_rate(window: Sequence[Entry]) -> float | None:
    """Messages a second the group committed across its ring (None: not measurable)."""
    if len(window) < 2 or window[-1].at <= window[0].at:
        return None
    moved = window[-1].offset - window[0].offset
    return moved / (window[-1].at - window[0].at) if moved > 0 else 0.0


def commit_lag(offset: int, hwm: int, at: float, prev_hwm: int | None, prev_at: float,
               interval: float) -> int:
    """The lag of a commit first seen at a reading (time ``at``, high-water mark ``hwm``):
    0 when it reaches the mark as it stood one commit ``interval`` earlier (interpolated
    from the previous reading's; that one itself when it is more recent), else
    ``hwm - offset``."""
    if prev_hwm is not None:
        gap = at - prev_at
        ref = float(prev_hwm)
        if gap > max(interval, 0.0):
            ref += (hwm - prev_hwm) * (gap - interval) / gap
        if offset >= ref:
            return 0
    return max(0, hwm - offset)


# -- the rings, kept from run to run -----------------------------------------------------


@dataclass(slots=True)
class Track:
    """One partition of one group: the last reading and the ring of commits."""

    offset: int
    hwm: int | None
    at: float
    commits: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class State:
    """Every tracked group's rings, and the groups reported expired."""

    groups: dict[str, dict[TP, Track]] = field(default_factory=dict)
    expired: dict[str, float] = field(default_factory=dict)
    """group -> last commit time, for groups reported expired (reported once)."""

    def observe(self, sample: Sample, members: Mapping[str, int], window: int,
                only: Iterable[str] | None = None, interval: float = 5.0,
                ) -> dict[str, dict[TP, list[int | None]]]:
        """Add one reading: a commit per partition whose offset moved (or, for a group
        with members, every partition: it re-commits on its timer), with its lag
        (:func:`commit_lag`). Returns the high-water marks seen (previous and this
        reading's) per partition: Burrow's recent broker offsets."""
        seen: dict[str, dict[TP, list[int | None]]] = {}
        groups = sample.committed if only is None else {g: sample.committed.get(g, {})
                                                         for g in only}
        for g, offs in groups.items():
            tracks = self.groups.setdefault(g, {})
            active = int(members.get(g, 0)) > 0
            for tp, off in offs.items():
                hw = sample.hwm.get(tp)
                tr = tracks.get(tp)
                if tr is None:
                    if hw is None:
                        continue  # no lag to record without a high-water mark
                    tr = tracks[tp] = Track(offset=off, hwm=hw, at=sample.at)
                    tr.commits.append(Entry(sample.at, off, max(0, hw - off)))
                    seen.setdefault(g, {})[tp] = [hw]
                    continue
                mark = hw if hw is not None else tr.hwm
                recommit = active and (not tr.commits
                                       or sample.at - tr.commits[-1].at >= 0.9 * interval)
                if (off != tr.offset or recommit) and mark is not None:
                    lag = commit_lag(off, mark, sample.at, tr.hwm, tr.at, interval)
                    tr.commits.append(Entry(sample.at, off, lag))
                    del tr.commits[:-window]
                seen.setdefault(g, {})[tp] = [tr.hwm, hw]
                tr.offset, tr.at = off, sample.at
                if hw is not None:
                    tr.hwm = hw
        return seen

    def last_commit(self, group: str) -> float | None:
        return max((t.commits[-1].at for t in self.groups.get(group, {}).values()
                    if t.commits), default=None)

    def keep(self, lags: Mapping[str, Mapping[TP, int]], limit: int,
             allowed_lag: float = 0) -> list[str]:
        """Bound what is stored to ``limit`` partitions: lagging groups first (most
        lag first), then the rest; a partition with no lag now keeps only its last
        commit (its ring cannot change a verdict while the lag is zero, and it holds
        the zero-lag commit that keeps it OK). Returns the groups dropped."""
        order = sorted(self.groups, key=lambda g: (-sum(lags.get(g, {}).values()), g))
        n, dropped = 0, []
        for g in order:
            tracks = self.groups[g]
            if n + len(tracks) > limit:
                dropped.append(g)
                continue
            n += len(tracks)
            for tp, tr in tracks.items():
                if lags.get(g, {}).get(tp, 0) <= allowed_lag and tr.commits:
                    del tr.commits[:-1]
        for g in dropped:
            del self.groups[g]
        return sorted(dropped)

    def encode(self) -> dict[str, Any]:
        """The compact form kept in ``run.metrics`` for the next run:
        ``{"v": 2, "g": {group: {topic: [[p, offset, hwm, at, [[at, off, lag], ...]]]}},
        "x": {expired group: last commit time}}`` (hwm -1 when unknown)."""
        groups: dict[str, Any] = {}
        for g, tracks in sorted(self.groups.items()):
            topics: dict[str, list[Any]] = {}
            for (topic, part), tr in sorted(tracks.items()):
                topics.setdefault(topic, []).append(
                    [part, tr.offset, -1 if tr.hwm is None else tr.hwm, round(tr.at, 3),
                     [[round(e.at, 3), e.offset, e.lag] for e in tr.commits]])
            groups[g] = topics
        return {"v": OFFSETS_FORMAT, "g": groups,
                "x": {g: round(t, 3) for g, t in sorted(self.expired.items())}}

    @classmethod
    def decode(cls, payload: Any) -> State:
        """A state from a stored payload; anything malformed (or an older format) is an
        empty state: the rings start again."""
        if not isinstance(payload, dict) or payload.get("v") != OFFSETS_FORMAT:
            return cls()
        try:
            groups: dict[str, dict[TP, Track]] = {}
            for g, topics in payload.get("g", {}).items():
                tracks: dict[TP, Track] = {}
                for topic, rows in topics.items():
                    for part, off, hw, at, commits in rows:
                        tracks[(str(topic), int(part))] = Track(
                            offset=int(off), hwm=None if hw < 0 else int(hw), at=float(at),
                            commits=[Entry(float(a), int(o), int(lag)) for a, o, lag in commits])
                groups[str(g)] = tracks
            expired = {str(g): float(t) for g, t in payload.get("x", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls()
        return cls(groups=groups, expired=expired)
