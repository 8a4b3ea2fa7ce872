"""Burrow's rules as pure functions over offset windows, one rule at a time, and the
readings that carry a window from one run to the next."""

from __future__ import annotations

from kubestack_ai.plugins.kafka import burrow
from kubestack_ai.plugins.kafka.burrow import Entry, partition_status
from kubestack_ai.plugins.kafka.model import Sample


def w(*rows: tuple[float, int, int]) -> list[Entry]:
    """(at, offset, hwm) -> entries with lag = hwm - offset."""
    return [Entry(at=at, offset=off, lag=max(0, hw - off), hwm=hw) for at, off, hw in rows]


def test_rule1_current_lag_within_allowed_is_ok_whatever_the_window() -> None:
    stuck = w((0, 5, 10), (10, 5, 10), (20, 5, 10))
    assert partition_status(stuck, current_lag=0, now=1000) == "OK"
    assert partition_status(stuck, current_lag=3, now=25, allowed_lag=5) == "OK"


def test_rule2_stop_when_the_last_commit_is_older_than_the_window_span() -> None:
    window = w((0, 5, 10), (10, 6, 12), (20, 7, 14))
    assert partition_status(window, current_lag=7, now=41) == "STOP"   # 21 s since > 20 s span
    assert partition_status(window, current_lag=7, now=39) != "STOP"   # 19 s since < 20 s span


def test_rule2_no_stop_when_recently_caught_up() -> None:
    # the high-water mark was at the last commit: the consumer was idle, not stopped
    window = w((0, 5, 7), (10, 6, 8), (20, 7, 7))
    assert partition_status(window, current_lag=3, now=100, broker_offsets=[]) != "STOP"
    window = w((0, 5, 9), (10, 6, 9), (20, 7, 9))
    assert partition_status(window, current_lag=3, now=100) == "STOP"
    assert partition_status(window, current_lag=3, now=100, broker_offsets=[7]) != "STOP"


def test_rule3_rewind_only_when_never_regained() -> None:
    rewound = w((0, 50, 100), (10, 30, 100), (20, 40, 100))
    assert partition_status(rewound, current_lag=60, now=25) == "REWIND"
    regained = w((0, 50, 100), (10, 30, 100), (20, 55, 100))
    assert partition_status(regained, current_lag=45, now=25) != "REWIND"


def test_rule3_rewind_is_checked_before_the_zero_lag_escape() -> None:
    window = w((0, 100, 100), (10, 20, 100), (20, 30, 100))
    assert partition_status(window, current_lag=70, now=25) == "REWIND"


def test_rule4_any_entry_within_allowed_lag_is_ok() -> None:
    window = w((0, 10, 10), (10, 10, 15), (20, 10, 20))  # caught up at the first entry
    assert partition_status(window, current_lag=10, now=25) == "OK"


def test_rule5_stall_when_every_commit_is_the_same_offset() -> None:
    window = w((0, 10, 20), (10, 10, 20), (20, 10, 25))
    assert partition_status(window, current_lag=15, now=25) == "STALL"


def test_rule6_warn_when_lag_never_decreases() -> None:
    window = w((0, 10, 20), (10, 12, 25), (20, 14, 30))  # moving, lag 10, 13, 16
    assert partition_status(window, current_lag=16, now=25) == "WARN"


def test_rule7_otherwise_ok() -> None:
    window = w((0, 10, 30), (10, 25, 35), (20, 30, 38))  # lag 20, 10, 8: catching up
    assert partition_status(window, current_lag=8, now=25) == "OK"


def test_empty_window_is_ok() -> None:
    assert partition_status([], current_lag=100, now=0) == "OK"


def test_group_takes_its_worst_partition() -> None:
    assert burrow.worst(["OK", "WARN", "STALL"]) == "STALL"
    assert burrow.worst(["OK", "STOP", "REWIND"]) == "STOP"
    assert burrow.worst([]) == "OK"


def test_readings_without_members_collapse_to_the_first_commit() -> None:
    # no active member: the same offset read three times is one commit, dated first
    entries = burrow.window_of([(0.0, 5, 9, 0), (10.0, 5, 9, 0), (20.0, 5, 9, 0)])
    assert entries == [Entry(0.0, 5, 4, 9)]
    assert partition_status(entries, current_lag=4, now=20.0) == "STOP"
    # with a member each reading stands for a commit: the same offset is a stall
    entries = burrow.window_of([(0.0, 5, 9, 1), (10.0, 5, 9, 1), (20.0, 5, 9, 1)])
    assert len(entries) == 3
    assert partition_status(entries, current_lag=4, now=20.0) == "STALL"


def test_readings_without_a_high_water_mark_are_not_judged() -> None:
    assert burrow.window_of([(0.0, 5, None, 1), (1.0, 6, 9, 1)]) == [Entry(1.0, 6, 3, 9)]


def test_readings_round_trip_through_the_stored_metric() -> None:
    s = Sample(at=1700000000.5, committed={"g": {("t", 0): 5, ("t", 1): 7}},
               hwm={("t", 0): 9})
    payload = burrow.encode(s, {"g": 2}, limit=100)
    assert payload == {"v": 1, "at": 1700000000.5,
                       "g": {"g": {"m": 2, "p": {"t": [[0, 5, 9], [1, 7, -1]]}}}}
    assert burrow.decode(payload) == {"g": {("t", 0): (1700000000.5, 5, 9, 2),
                                            ("t", 1): (1700000000.5, 7, None, 2)}}
    assert burrow.encode(s, {}, limit=1)["g"]["g"]["p"] == {"t": [[0, 5, 9]]}
    assert burrow.decode({"v": 99}) == {}
    assert burrow.decode({"v": 1, "at": "x", "g": {}}) == {}


def test_lag_is_never_negative() -> None:
    # a committed offset past the high-water mark (a truncated log) is lag 0, not -3
    s = Sample(at=0, committed={"g": {("t", 0): 12}}, hwm={("t", 0): 9})
    assert s.lag("g") == {("t", 0): 0}
