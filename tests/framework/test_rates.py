"""kubestack_ai.plugins.rates: counters since start judged as rates (pure functions).

The real-server half (a Redis counter read twice, and across a restart) is in
tests/redis/test_rates_redis.py."""

from __future__ import annotations

import datetime as dt

import pytest

from kubestack_ai.plugins import Deadline, Snapshot
from kubestack_ai.plugins.rates import Reading, counter_rate, readings, second_reading

T0 = 1_800_000_000.0


def rd(at: float, value: float | None, life: str = "a", uptime: float | None = None) -> Reading:
    return Reading.of(T0 + at, {} if value is None else {"c": value}, life=life, uptime=uptime)


def test_no_history_needs_a_sample_and_keeps_the_lifetime_total_as_since_start() -> None:
    r = counter_rate("c", rd(0, 42), [])
    assert r.needs_sample and r.delta is None and r.per_second is None and not r.moving
    assert r.total == 42
    assert r.evidence() == {"c": 42, "last_moved": "since start"}


def test_rate_over_the_window_from_history() -> None:
    r = counter_rate("c", rd(100, 70), [rd(0, 10), rd(50, 40)])
    assert (r.delta, r.seconds, r.source) == (60, 100, "history")
    assert r.per_second == pytest.approx(0.6)
    assert r.moving
    assert r.last_moved == T0 + 100
    ev = r.evidence()
    assert ev["c"] == 70 and ev["c_in_window"] == 60 and ev["c_per_second"] == 0.6
    assert ev["window_seconds"] == 100 and ev["window_source"] == "history"


def test_a_quiet_counter_says_when_it_last_moved() -> None:
    # rose at 100, the window (250 s) starts at 100: quiet within it
    r = counter_rate("c", rd(300, 5), [rd(0, 2), rd(100, 5), rd(200, 5)], window_seconds=250)
    assert not r.moving and r.delta == 0 and r.per_second == 0
    assert r.last_moved == T0 + 100
    assert r.last_moved_text() == dt.datetime.fromtimestamp(T0 + 100, dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    # never seen rising: it moved before our oldest reading
    r2 = counter_rate("c", rd(300, 5), [rd(0, 5)])
    assert r2.last_moved is None and r2.last_moved_text().startswith("before ")


def test_readings_older_than_the_window_are_history_not_rate() -> None:
    # moved an hour ago, quiet since, and only an hour-old reading stored: no rate from it
    r = counter_rate("c", rd(3600, 9), [rd(0, 1)], window_seconds=900)
    assert r.needs_sample and not r.moving
    assert r.last_moved == T0 + 3600  # first seen at 9 now (it rose since the old reading)
    # with a reading inside the window the window starts there
    r2 = counter_rate("c", rd(3600, 9), [rd(0, 1), rd(3000, 9)], window_seconds=900)
    assert (r2.delta, r2.seconds) == (0, 600)


def test_a_counter_that_goes_down_starts_a_new_window_never_a_negative_rate() -> None:
    # CONFIG RESETSTAT between the last stored reading and now
    r = counter_rate("c", rd(100, 3), [rd(0, 50)])
    assert r.needs_sample and r.reset and r.delta is None
    assert r.evidence()["window_reset"] is True
    assert r.last_moved_text() == "since the last reset"
    # reset earlier in the history: the window starts after it
    r2 = counter_rate("c", rd(200, 8), [rd(0, 50), rd(100, 3)])
    assert (r2.delta, r2.seconds, r2.reset) == (5, 100, True)


def test_another_server_life_is_never_part_of_the_window() -> None:
    # run_id changed: a restart, even though the counter is higher now
    r = counter_rate("c", rd(100, 90, life="b"), [rd(0, 10, life="a")])
    assert r.needs_sample and r.reset
    # no identity, but the uptime went down
    r2 = counter_rate("c", rd(100, 90, life="", uptime=20),
                      [rd(0, 10, life="", uptime=500)])
    # ... and the server is younger than the window: its uptime is the window (issue 24)
    assert r2.reset and not r2.needs_sample
    assert (r2.source, r2.delta, r2.seconds) == ("uptime", 90, 20)
    # uptime grew, but less than the wall clock: restarted after the earlier reading
    r3 = counter_rate("c", rd(1000, 90, life="", uptime=600),
                      [rd(0, 10, life="", uptime=500)])
    assert r3.reset and (r3.source, r3.delta, r3.seconds) == ("uptime", 90, 600)
    # restarted longer ago than the window: nothing to judge by until a second reading
    r3b = counter_rate("c", rd(3000, 90, life="", uptime=1200),
                       [rd(0, 10, life="", uptime=500)])
    assert r3b.needs_sample and r3b.reset
    # the same life: uptime grew with the clock
    r4 = counter_rate("c", rd(100, 90, uptime=600), [rd(0, 10, uptime=500)])
    assert (r4.delta, r4.reset) == (80, False)
    assert r4.evidence()["server_started"]


def test_in_run_source_and_readings_without_the_counter() -> None:
    first = rd(0, 4)
    r = counter_rate("c", rd(1, 6), [first, rd(-5, None)], in_run_since=first.at)
    assert (r.delta, r.seconds, r.source) == (2, 1, "in-run")
    # a reading taken after now is ignored
    assert counter_rate("c", rd(1, 6), [rd(2, 7)]).needs_sample


def test_readings_from_snapshots_select_a_node_and_keep_order() -> None:
    at = dt.datetime.fromtimestamp(T0, dt.UTC)
    snaps = (
        Snapshot(at=at + dt.timedelta(seconds=60), metrics={"nodes": {"n1": {
            "c": 5, "run_id": "x", "uptime_in_seconds": 160}}}),
        Snapshot(at=at, metrics={"nodes": {"n1": {"c": 1, "run_id": "x",
                                                   "uptime_in_seconds": 100}}}),
        Snapshot(at=at, metrics={}),
    )
    got = readings(snaps, life_key="run_id", uptime_key="uptime_in_seconds",
                   select=lambda m: m.get("nodes", {}).get("n1"))
    assert [(r.at - T0, r.value("c"), r.life, r.uptime) for r in got] == [
        (0, 1, "x", 100), (60, 5, "x", 160)]
    # a value that is not a number is no reading of the counter
    assert Reading.of(T0, {"c": "7"}).value("c") is None


def test_second_reading_waits_within_the_deadline() -> None:
    calls: list[float] = []

    def read() -> Reading:
        calls.append(1)
        return rd(1, 1)

    assert second_reading(read, 0.05, Deadline(10)) is not None and calls == [1]
    expired = Deadline(0)
    assert second_reading(read, 0.05, expired) is None and calls == [1]
    cancelled = Deadline(10)
    cancelled.cancel()
    assert second_reading(read, 0.05, cancelled) is None
