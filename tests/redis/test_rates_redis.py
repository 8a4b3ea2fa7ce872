"""kubestack_ai.plugins.rates against a real Redis: a counter read twice moves as the
server counts, CONFIG RESETSTAT and a restart start a new window (never a negative rate,
never a rate across two server lives)."""

from __future__ import annotations

import time
from typing import Any

from kubestack_ai.plugins import Deadline
from kubestack_ai.plugins.rates import Reading, counter_rate, second_reading

from .util import Servers


def read(client: Any) -> Reading:
    info = client.info("all")
    return Reading.of(time.time(), info, life=info["run_id"], uptime=info["uptime_in_seconds"])


def test_a_real_counter_in_run_reset_and_restart(servers: Servers) -> None:
    srv = servers.start()
    with srv.client() as c:
        first = read(c)
        # a server younger than the window: its start is the window (issue 24 item 6)
        young = counter_rate("total_commands_processed", first, [])
        assert young.source == "uptime" and young.delta == young.total
        assert counter_rate("total_commands_processed", first, [], window_seconds=-1).needs_sample
        for i in range(50):
            c.set(f"rate:{i}", i)
        second = second_reading(lambda: read(c), 0.2, Deadline(10))
        assert second is not None
        r = counter_rate("total_commands_processed", second, [first], in_run_since=first.at)
        assert r.source == "in-run" and r.moving and r.delta is not None and r.delta >= 50
        assert r.per_second is not None and r.per_second > 0
        # a quiet counter over the same window
        q = counter_rate("evicted_keys", second, [first], in_run_since=first.at)
        assert (q.total, q.delta, q.moving) == (0, 0, False)

        c.config_resetstat()
        after_reset = read(c)
        r2 = counter_rate("total_commands_processed", after_reset, [first, second],
                          window_seconds=-1)
        assert r2.reset and r2.needs_sample and r2.delta is None
    # another server process (what a restart is to the counters): a new run_id and a
    # counter that is higher than before, which must still not make a window
    srv.stop()
    srv2 = servers.start()
    with srv2.client() as c2:
        for _ in range(500):
            c2.incr("rate:n")
        restarted = read(c2)
    assert restarted.life != first.life
    r3 = counter_rate("total_commands_processed", restarted, [first, second])
    # the window is the new life's uptime, never one across the two lives
    assert r3.reset and r3.source == "uptime" and r3.delta == r3.total
