"""Burrow's rules as pure functions over rings of commits, one rule at a time, checked
against the transcription of Burrow's evaluator (burrow_reference.py); and the rings
that carry commits from one run to the next."""

from __future__ import annotations

import itertools
import random

from kubestack_ai.plugins.kafka import burrow
from kubestack_ai.plugins.kafka.burrow import Entry, State, partition_status
from kubestack_ai.plugins.kafka.model import Sample

from . import burrow_reference as ref


def w(*rows: tuple[float, int, int]) -> list[Entry]:
    """(at, offset, hwm known then) -> commits with lag = hwm - offset."""
    return [Entry(at=at, offset=off, lag=max(0, hw - off)) for at, off, hw in rows]


def test_rule1_current_lag_within_allowed_is_ok_whatever_the_window() -> None:
    stuck = w((0, 5, 10), (10, 5, 10), (20, 5, 10))
    assert partition_status(stuck, current_lag=0, now=1000) == "OK"
    assert partition_status(stuck, current_lag=3, now=25, allowed_lag=5) == "OK"


def test_rule2_stop_when_the_last_commit_is_older_than_the_window_span() -> None:
    window = w((0, 5, 10), (10, 6, 12), (20, 7, 14))
    assert partition_status(window, current_lag=7, now=41) == "STOP"   # 21 s since > 20 s span
    assert partition_status(window, current_lag=7, now=39) != "STOP"   # 19 s since < 20 s span


def test_rule2_stop_comes_before_the_zero_lag_escape() -> None:
    # caught up at the first commit, then stopped while the producers went on
    window = w((0, 10, 10), (10, 12, 15), (20, 14, 20))
    assert partition_status(window, current_lag=30, now=100) == "STOP"


def test_rule2_no_stop_when_recently_caught_up() -> None:
    window = w((0, 5, 9), (10, 6, 9), (20, 7, 9))
    assert partition_status(window, current_lag=3, now=100) == "STOP"
    # a recent high-water mark at or below the last commit: idle, not stopped
    assert partition_status(window, current_lag=3, now=100, broker_offsets=[7]) != "STOP"


def test_rule3_a_replay_after_being_caught_up_is_ok() -> None:
    """A deliberate replay (offsets reset to the start) after the group was caught up:
    Burrow says OK, since a commit of the ring had lag 0."""
    window = w((0, 100, 100), (10, 20, 100), (20, 30, 100))
    assert partition_status(window, current_lag=70, now=25) == "OK"


def test_rule3_a_rewind_regained_while_still_lagging_is_rewind() -> None:
    regained = w((0, 50, 100), (10, 30, 100), (20, 55, 100))
    assert partition_status(regained, current_lag=45, now=25) == "REWIND"


def test_rule3_any_commit_within_allowed_lag_is_ok() -> None:
    window = w((0, 10, 10), (10, 10, 15), (20, 10, 20))  # caught up at the first commit
    assert partition_status(window, current_lag=10, now=25) == "OK"


def test_rule3_stall_when_every_commit_is_the_same_offset() -> None:
    window = w((0, 10, 20), (10, 10, 20), (20, 10, 25))
    assert partition_status(window, current_lag=15, now=25) == "STALL"


def test_rule3_warn_when_lag_never_decreases() -> None:
    window = w((0, 10, 20), (10, 12, 25), (20, 14, 30))  # moving, lag 10, 13, 16
    assert partition_status(window, current_lag=16, now=25) == "WARN"


def test_rule4_otherwise_ok() -> None:
    window = w((0, 10, 30), (10, 25, 35), (20, 30, 38))  # lag 20, 10, 8: catching up
    assert partition_status(window, current_lag=8, now=25) == "OK"


def test_a_ring_not_complete_enough_is_ok() -> None:
    one = w((0, 5, 9))
    assert partition_status(one, current_lag=4, now=1000, minimum=3) == "OK"
    assert partition_status([], current_lag=100, now=0) == "OK"


def test_group_takes_its_worst_partition() -> None:
    assert burrow.worst(["OK", "WARN", "STALL"]) == "STALL"
    assert burrow.worst(["OK", "STOP", "REWIND"]) == "STOP"
    assert burrow.worst([]) == "OK"


def test_every_small_ring_agrees_with_burrows_evaluator() -> None:
    """Exhaustive over small rings, random over larger ones: the plugin's rules and the
    transcription of caching.go give the same status."""
    rng = random.Random(16)
    cases = []
    for offs in itertools.product([3, 5, 8], repeat=3):
        for hws in itertools.product([5, 8, 9], repeat=3):
            cases.append([(float(10 * i), o, h) for i, (o, h) in enumerate(zip(offs, hws, strict=True))])
    for _ in range(2000):
        n = rng.randint(1, 10)
        t, rows = 0.0, []
        for _ in range(n):
            t += rng.choice([1, 5, 60])
            rows.append((t, rng.randint(0, 50), rng.randint(0, 60)))
        cases.append(rows)
    for rows in cases:
        commits = [(t, off, max(0, hw - off)) for t, off, hw in rows]
        for current, now_after, broker in itertools.product(
                [0, 4], [1.0, 10_000.0], [[], [rows[-1][1]], [rows[-1][1] + 5]]):
            now = rows[-1][0] + now_after
            want = ref.status(commits, broker, current, now)
            got = partition_status(w(*rows), current, now, 0, broker)
            assert got == want, (rows, current, now, broker)


# -- rings kept from run to run --------------------------------------------------------


def s(at: float, off: int, hw: int, g: str = "g", tp: tuple[str, int] = ("t", 0)) -> Sample:
    return Sample(at=at, committed={g: {tp: off}}, hwm={tp: hw})


def test_a_commit_takes_its_lag_against_the_previous_high_water_mark() -> None:
    """A healthy timer-committing consumer at constant traffic: each reading finds it
    a little behind the high-water mark read at the same moment, but at or past the one
    read before: Burrow's lag 0."""
    st = State()
    st.observe(s(0, 90, 100), {"g": 1}, 10)
    st.observe(s(60, 695, 700), {"g": 1}, 10)
    st.observe(s(120, 1296, 1300), {"g": 1}, 10)
    assert st.groups["g"][("t", 0)].commits == [Entry(0, 90, 10), Entry(60, 695, 0),
                                                Entry(120, 1296, 0)]
    assert partition_status(st.groups["g"][("t", 0)].commits, 4, 121, minimum=3) == "OK"


def test_without_members_an_unchanged_offset_is_no_commit() -> None:
    st = State()
    for at in (0, 60, 120):
        st.observe(s(at, 5, 9), {}, 10)
    assert st.groups["g"][("t", 0)].commits == [Entry(0, 5, 4)]
    # with a member each reading is a commit (it re-commits on its timer)
    st = State()
    for at in (0, 60, 120):
        st.observe(s(at, 5, 9), {"g": 1}, 10)
    assert len(st.groups["g"][("t", 0)].commits) == 3
    # and the ring holds at most the window's commits
    for at in range(180, 2000, 60):
        st.observe(s(at, 5, 9), {"g": 1}, 10)
    assert len(st.groups["g"][("t", 0)].commits) == 10


def test_rings_round_trip_through_the_stored_metric() -> None:
    st = State()
    st.observe(Sample(at=1700000000.5, committed={"g": {("t", 0): 5, ("t", 1): 7}},
                      hwm={("t", 0): 9}), {"g": 2}, 10)
    st.expired["old"] = 1.5
    payload = st.encode()
    assert payload == {"v": 2, "g": {"g": {"t": [[0, 5, 9, 1700000000.5,
                                                  [[1700000000.5, 5, 4]]]]}},
                       "x": {"old": 1.5}}
    back = State.decode(payload)
    assert back.groups == st.groups and back.expired == st.expired
    assert State.decode({"v": 1, "at": 1, "g": {}}).groups == {}  # older format: start again
    assert State.decode({"v": 2, "g": {"g": {"t": [["x"]]}}}).groups == {}


def test_stored_rings_are_bounded_lagging_groups_first() -> None:
    st = State()
    for g in ["a", "b", "c"]:
        for p in range(3):
            st.observe(s(0, 5, 9, g, ("t", p)), {g: 1}, 10)
            st.observe(s(60, 6, 9, g, ("t", p)), {g: 1}, 10)
    lags = {"a": {("t", p): 0 for p in range(3)}, "b": {("t", p): 3 for p in range(3)},
            "c": {("t", p): 1 for p in range(3)}}
    dropped = st.keep(lags, limit=6)
    assert dropped == ["a"] and set(st.groups) == {"b", "c"}
    assert all(len(tr.commits) == 2 for tr in st.groups["b"].values())
    st = State(groups={g: dict(v) for g, v in st.groups.items()})
    st.keep({"b": {("t", p): 0 for p in range(3)}}, limit=100)
    assert all(len(tr.commits) == 1 for tr in st.groups["b"].values())  # no lag: last only


def test_lag_is_never_negative() -> None:
    # a committed offset past the high-water mark (a truncated log) is lag 0, not -3
    sample = Sample(at=0, committed={"g": {("t", 0): 12}}, hwm={("t", 0): 9})
    assert sample.lag("g") == {("t", 0): 0}


def test_consume_rate_and_time_behind() -> None:
    from kubestack_ai.plugins.kafka.checks.consumer import time_behind

    ring = w((0, 100, 100), (10, 200, 200), (20, 300, 310))  # 10 messages a second
    assert burrow.consume_rate(ring) == 10.0
    assert burrow.consume_rate(ring[:1]) is None
    st = State(groups={"g": {("t", 0): burrow.Track(300, 310, 20, list(ring))},
                       "idle": {("t", 0): burrow.Track(5, 9, 20, w((0, 5, 9), (10, 5, 9)))}})
    behind = time_behind(st, {"g": {("t", 0): 50}, "idle": {("t", 0): 4}, "new": {("t", 0): 0}})
    assert behind == {"g": 5.0, "idle": None, "new": 0.0}
