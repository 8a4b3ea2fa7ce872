"""A literal password sent in a task's kwargs is refused without echo by the task, and
what the worker reports about the task (the events Flower's task page reads, the
worker's log at DEBUG, the pool's ``TaskPool: Apply`` line) shows ``<redacted>`` for it,
and a reference as it is."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import pytest

from .conftest import Worker

pytestmark = pytest.mark.timeout(60)

LITERAL = "Pl41n-t3xt-hunter2"


def test_literal_secret_redacted_in_events_and_log(app: Any, worker: Worker) -> None:
    events: list[dict[str, Any]] = []
    ready = threading.Event()
    receivers: list[Any] = []

    def listen() -> None:
        with app.connection() as conn:
            recv = app.events.Receiver(conn, handlers={"*": events.append})
            receivers.append(recv)
            ready.set()
            with contextlib.suppress(TimeoutError):
                recv.capture(limit=None, timeout=1, wakeup=True)

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    ready.wait(5)
    time.sleep(0.5)
    target = {"name": "lit", "endpoints": ["127.0.0.1:1"],
              "auth": {"username": "ops", "password": LITERAL},
              "options": {"behaviour": "ok", "sentinel_password_ref": "env:SENTINEL_PW"}}
    r = app.send_task("diagnose.faulty", kwargs={"target": target}).get(timeout=20)
    assert r["error"].startswith("invalid target: auth.password: Value error, auth.password "
                                 "must be a secret reference")
    assert LITERAL not in str(r)
    time.sleep(1.0)  # the worker's events for it
    receivers[0].should_stop = True
    t.join(10)
    assert not t.is_alive()
    received = [e for e in events if e.get("type") == "task-received" and e["uuid"] == r["task_id"]]
    assert received, [e.get("type") for e in events]
    kw = received[0]["kwargs"]
    assert LITERAL not in kw and "'password': '<redacted>'" in kw
    assert "'sentinel_password_ref': 'env:SENTINEL_PW'" in kw
    leaks = [e for e in events if LITERAL in str(e)]
    assert not leaks, leaks
    log = worker.log.read_text()
    assert "TaskPool: Apply" in log  # the worker runs at DEBUG: the line is there
    assert LITERAL not in log
    assert "'password': '<redacted>'" in log


def test_redaction_keeps_references_and_other_fields() -> None:
    from kubestack_ai.workers.redact import redact, redact_text

    doc = {"auth": {"username": "ops", "password": "x"}, "tls": {"key_password": "file:/k"},
           "options": {"api_token": 3, "db": 0, "list": [{"secret": "s"}]}}
    assert redact(doc) == {"auth": {"username": "ops", "password": "<redacted>"},
                           "tls": {"key_password": "file:/k"},
                           "options": {"api_token": "<redacted>", "db": 0,
                                       "list": [{"secret": "<redacted>"}]}}
    assert redact_text('''b'{"password": "x y", "username": "u"}' {'token': 'env:T'}''') == (
        '''b'{"password": "<redacted>", "username": "u"}' {'token': 'env:T'}''')
