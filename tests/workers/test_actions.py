"""The ``action.<type>`` task on a real prefork worker: the same path as ``ksa action``
(whitelist, dangerous actions allowed by name, time limits), every attempt in the audit
log with the task id and its sender."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis.util import RedisProc, Servers

from .conftest import client_app

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProc]:
    servers = Servers(tmp_path_factory.mktemp("redis"))
    yield servers.start()
    servers.stop_all()


def act(app: Any, mtype: str, target: dict[str, Any], action: str, **kw: Any) -> dict[str, Any]:
    r = app.send_task(f"action.{mtype}", args=(target, action), kwargs=kw)
    return r.get(timeout=30)  # type: ignore[no-any-return]


def test_action_tasks_are_registered_on_their_type_queue(app: Any, worker: Any) -> None:
    assert app.tasks["action.faulty"].soft_time_limit == 3.0  # connect 1 + execute 2
    assert app.tasks["action.faulty"].time_limit == 5.0
    assert app.amqp.router.route({}, "action.redis")["queue"].name == "redis"
    # the bench's floors are registered only when the bench asks (KSA_BENCH_TASKS=1)
    assert "ksa.noop" not in app.tasks and "ksa.noop_limited" not in app.tasks
    bench = client_app({**worker.env, "KSA_BENCH_TASKS": "1"})
    try:
        assert bench.tasks["ksa.noop_limited"].soft_time_limit == 30.0
        assert "ksa.noop" in bench.tasks
    finally:
        bench.close()
        app.set_current()  # create_app made the bench's app the current one


def test_kill_idle_clients_task_is_audited_with_task_id_and_sender(
        app: Any, store: Any, srv: RedisProc) -> None:
    socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(3)]
    try:
        time.sleep(1.1)
        target = {"endpoints": [srv.addr]}
        dry = act(app, "redis", target, "kill_idle_clients", params={"min_idle_seconds": 1},
                  dry_run=True)
        assert dry["outcome"] == "succeeded" and len(dry["result"]["would_kill"]) == 3
        r = act(app, "redis", target, "kill_idle_clients", params={"min_idle_seconds": 1})
        assert r["outcome"] == "succeeded" and r["ok"] is True, r
        assert r["result"]["killed"] == 3 and r["target"] == f"redis:{srv.addr}"
    finally:
        for s in socks:
            s.close()
    log = store.audit_log(target=f"redis:{srv.addr}")
    assert [(a.action, a.dry_run, a.outcome) for a in log[:2]] == [
        ("kill_idle_clients", False, "succeeded"), ("kill_idle_clients", True, "succeeded")]
    assert log[0].id == r["audit_id"]
    # the sender: Celery's origin of the message (this process, a client "gen<pid>")
    assert log[0].who == f"task {r['task_id']} from gen{os.getpid()}@{socket.gethostname()}"
    assert log[0].result["killed"] == 3 and log[0].duration > 0


def test_dangerous_task_refused_unless_allowed(app: Any, store: Any, srv: RedisProc) -> None:
    with srv.client() as c:
        c.set("k", 1)
    target = {"endpoints": [srv.addr]}
    r = act(app, "redis", target, "flushdb")
    assert r["outcome"] == "refused" and "allow it by name" in r["error"]
    with srv.client() as c:
        assert c.dbsize() == 1
    r = act(app, "redis", target, "flushdb", params={"async": False}, allow=["flushdb"])
    assert r["outcome"] == "succeeded", r
    with srv.client() as c:
        assert c.dbsize() == 0
    log = store.audit_log(target=f"redis:{srv.addr}", limit=2)
    assert [(a.action, a.outcome) for a in log] == [("flushdb", "succeeded"),
                                                   ("flushdb", "refused")]


def test_action_past_its_soft_limit_is_stopped_and_audited_as_failed(app: Any,
                                                                    store: Any) -> None:
    target = {"name": "napper", "endpoints": ["127.0.0.1:1"]}
    t0 = time.monotonic()
    r = act(app, "faulty", target, "nap", params={"seconds": 20})
    assert time.monotonic() - t0 < 10
    assert r["outcome"] == "failed" and "SoftTimeLimitExceeded" in r["error"]
    a = store.audit_log(target="faulty:napper", limit=1)[0]
    assert a.outcome == "failed" and a.id == r["audit_id"]
    assert act(app, "faulty", target, "nap", params={"seconds": 0})["outcome"] == "succeeded"


def test_invalid_target_is_refused_and_audited(app: Any, store: Any) -> None:
    r = act(app, "redis", {"endpoints": ["nohost"]}, "slowlog_reset")
    assert r["outcome"] == "refused" and r["error"].startswith("invalid target: endpoints")
    a = store.audit_log(limit=1)[0]
    assert a.id == r["audit_id"] and a.action == "slowlog_reset" and a.outcome == "refused"
