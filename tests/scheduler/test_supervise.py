"""``ksa run``'s supervision on its own: a process that exits unasked is restarted after
a back-off that doubles while it keeps dying, and the terminal says so, in these words."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(30)


def test_a_process_that_exits_is_restarted_with_back_off() -> None:
    from kubestack_ai.ksa.supervise import Supervisor

    said: list[str] = []
    sup = Supervisor(env={}, stdout=subprocess.DEVNULL, say=said.append)
    child = sup.start("worker", [sys.executable, "-c", "import sys; sys.exit(1)"])
    t0 = time.monotonic()
    while child.restarts < 1 and time.monotonic() - t0 < 10:
        sup.poll()
        time.sleep(0.05)
    # restarted after 2 s, not before
    assert 1.9 < time.monotonic() - t0 < 4
    while len(said) < 2 and time.monotonic() - t0 < 10:
        sup.poll()
        time.sleep(0.05)
    sup.stop()
    assert said == ["ksa run: worker exited (code 1): restarting in 2 s",
                    "ksa run: worker exited (code 1): restarting in 4 s"]
    assert child.proc is None and child.restart_at is None  # stopped: not started again


def test_stop_ends_a_running_process_and_restarts_nothing() -> None:
    from kubestack_ai.ksa.supervise import Supervisor

    said: list[str] = []
    sup = Supervisor(env={}, stdout=subprocess.DEVNULL, say=said.append)
    child = sup.start("beat", [sys.executable, "-c", "import time; time.sleep(60)"])
    proc = child.proc
    assert proc is not None
    sup.stop(timeout=5)
    assert proc.returncode is not None
    sup.poll()
    assert said == [] and child.restarts == 0 and child.proc is None
