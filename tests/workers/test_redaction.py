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
    from kubestack_ai.plugins.redaction import redact_text
    from kubestack_ai.plugins.redaction import redact_value as redact

    doc = {"auth": {"username": "ops", "password": "x"}, "tls": {"key_password": "file:/k"},
           "options": {"api_token": 3, "db": 0, "list": [{"secret": "s"}]}}
    assert redact(doc) == {"auth": {"username": "ops", "password": "<redacted>"},
                           "tls": {"key_password": "file:/k"},
                           "options": {"api_token": "<redacted>", "db": 0,
                                       "list": [{"secret": "<redacted>"}]}}
    assert redact_text('''b'{"password": "x y", "username": "u"}' {'token': 'env:T'}''') == (
        '''b'{"password": "<redacted>", "username": "u"}' {'token': 'env:T'}''')


SENTINEL_LITERAL = "S3nt1nel-l1teral-pw"
LIST_LITERAL = "L1st-l1teral-t0ken"
SETTING_LITERAL = "Requ1rep4ss-l1teral"


def wait_for_log(worker: Worker, text: str, timeout: float = 10) -> None:
    t0 = time.monotonic()
    while text not in worker.log.read_text():
        assert time.monotonic() - t0 < timeout, f"not logged: {text}"
        time.sleep(0.1)


def test_plain_sender_literals_never_in_debug_log(app: Any, worker: Worker) -> None:
    """A sender that is not our app (any Celery client: its ``argsrepr`` is a plain repr)
    queues diagnose, health and action tasks with literal secrets; the worker runs at
    --loglevel debug, where Celery's own lines print the message body and the sender's
    reprs. None of it shows a literal."""
    from celery import Celery

    plain = Celery("plain", broker=worker.env["KSA_BROKER_URL"])
    plain.conf.update(task_serializer="json", task_routes=app.conf.task_routes)
    target = {"name": "plain", "endpoints": ["127.0.0.1:1"],
              "auth": {"username": "ops", "password": LITERAL},
              "options": {"behaviour": "ok", "sentinel_password_ref": SENTINEL_LITERAL,
                          "sasl": [{"oauth_token": LIST_LITERAL}]}}
    ids = [plain.send_task("diagnose.faulty", kwargs={"target": target}).id,
           plain.send_task("health.faulty", kwargs={"target": target}).id,
           plain.send_task("action.faulty", args=(target, "nap"),
                           kwargs={"params": {"seconds": 0}}).id,
           plain.send_task("action.faulty", args=(target, "config_set"),
                           kwargs={"params": {"name": "requirepass",
                                              "value": SETTING_LITERAL}}).id]
    # a task no worker knows: Celery logs the whole message body
    plain.send_task("ksa.not_a_task", kwargs={"target": target}, queue="celery")
    plain.close()
    for task_id in ids:
        app.AsyncResult(task_id).get(timeout=20, propagate=False)
    wait_for_log(worker, "Received unregistered task of type 'ksa.not_a_task'")
    log = worker.log.read_text()
    assert all(task_id in log for task_id in ids)
    for literal in (LITERAL, SENTINEL_LITERAL, LIST_LITERAL, SETTING_LITERAL):
        leaks = [line for line in log.splitlines() if literal in line]
        assert not leaks, leaks


def test_every_task_of_the_app_redacts_its_request(app: Any) -> None:
    """action.<type>, retention and whatever a plugin adds: one task class, one request."""
    ours = {n: t for n, t in app.tasks.items() if not n.startswith("celery.")}
    assert {"diagnose.faulty", "health.faulty", "action.faulty", "ksa.retention"} <= set(ours)
    for name, task in ours.items():
        assert task.Request == "kubestack_ai.workers.redact:RedactingRequest", name


def test_one_definition_of_a_secret_looking_key() -> None:
    """The audit log's redaction and the tasks' are the same: config_set's value on a
    secret setting, lists under a secret key item by item, references shown."""
    from kubestack_ai.plugins.execution import redact as audit_redact
    from kubestack_ai.plugins.redaction import redact_text, redact_value

    params = {"name": "masterauth", "value": "x", "passwords": ["env:A_PW", "lit"],
              "token_bucket_size": 3, "auth_mode": "acl"}
    want = {"name": "masterauth", "value": "<redacted>", "passwords": ["env:A_PW", "<redacted>"],
            "token_bucket_size": 3, "auth_mode": "acl"}
    assert redact_value(params) == audit_redact(params) == want
    assert redact_text(repr(params)) == repr(want)
    # a target named like a secret is not a setting: only its secret fields are hidden
    target = {"name": "session-token", "endpoints": ["h:1"], "auth": {"password": "p"}}
    assert redact_value(target)["endpoints"] == ["h:1"]


def test_beat_kwargsrepr_is_redacted(tmp_path: Any) -> None:
    """Beat builds a job's kwargsrepr itself (a plain repr, cheaper than saferepr): with
    the same redaction. A job's kwargs hold what the fleet file validated; one that
    holds a literal anyway (a fleet file read by an older version) never shows it."""
    from kubestack_ai.scheduler.beat import FleetScheduler, Job
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("targets:\n  - {name: a, type: redis, endpoints: ['127.0.0.1:1']}\n")
    app = create_app(Settings.from_env({"KSA_HOME": str(tmp_path), "KSA_FLEET": str(fleet),
                                        "KSA_BROKER_URL": "memory://"}))
    s = FleetScheduler(app=app, lazy=False)
    try:
        job = Job("x", "diagnose.redis", {"target": {"name": "x", "auth": {
            "username": "ops", "password": LITERAL}}}, 10.0)
        with app.connection_for_write() as conn:
            s._send(app.amqp.Producer(conn), job, time.time())
            msg = conn.SimpleQueue("redis").get(timeout=2)
        assert msg.headers["kwargsrepr"] == (
            "{'target': {'name': 'x', 'auth': {'username': 'ops', 'password': '<redacted>'}}}")
    finally:
        s.close()
        app.close()


def test_log_records_are_redacted_as_they_are_made(caplog: pytest.LogCaptureFixture) -> None:
    """Any logger, any handler (pytest's own here), the traceback text included."""
    import logging

    from kubestack_ai.plugins.redaction import install_log_redaction

    install_log_redaction()
    install_log_redaction()  # idempotent: one factory
    log = logging.getLogger("some.library.nobody.filters")
    with caplog.at_level(logging.DEBUG, logger="some.library.nobody.filters"):
        log.debug("body %r", {"auth": {"password": LITERAL}, "db": 0})
        try:
            raise ValueError(f"bad {{'api_key': '{LITERAL}'}}")
        except ValueError:
            log.exception("failed")
    text = caplog.text
    assert LITERAL not in text
    assert "body {'auth': {'password': '<redacted>'}, 'db': 0}" in text
    assert "ValueError: bad {'api_key': '<redacted>'}" in text
