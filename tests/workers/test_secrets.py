"""No password reaches a task's arguments, a log line, a stored row or the broker."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SECRET

pytestmark = pytest.mark.timeout(60)


def test_password_only_as_reference_everywhere(app: Any, worker: Any, store: Any) -> None:
    import redis

    target = {"name": "secret", "endpoints": ["127.0.0.1:1"],
              "auth": {"username": "ops", "password": "env:KSA_TEST_SECRET"},
              "options": {"behaviour": "secret"}}
    r = app.send_task("diagnose.faulty", kwargs={"target": target, "force": True}).get(timeout=20)
    # the plugin resolved the reference inside the worker and the server "accepted" it
    assert r["outcome"] == "completed" and "_connect" not in r["result"]["errors"]
    wrong = {**target, "name": "secret-wrong", "auth": {"password": "env:KSA_TEST_WRONG_PW"}}
    bad = app.send_task("diagnose.faulty", kwargs={"target": wrong, "force": True}).get(timeout=20)
    assert bad["result"]["findings"][0]["code"] == "faulty.connection.auth_failed"

    assert SECRET not in repr(r) and SECRET not in repr(bad)
    assert SECRET.encode() not in worker.log.read_bytes()  # logged at debug level
    for f in worker.home.glob("ksa.db*"):
        assert SECRET.encode() not in f.read_bytes()
    for row in store.history("faulty:secret"):
        assert SECRET not in row.result.model_dump_json()
    client = redis.Redis.from_url(worker.env["KSA_BROKER_URL"])
    try:
        for key in client.scan_iter():
            blob = client.dump(key) or b""
            assert SECRET.encode() not in blob, key
    finally:
        client.close()


def test_task_reference_outside_the_policy_is_refused_before_connecting(
        app: Any, worker: Any) -> None:
    """``celery call diagnose.redis`` naming /etc/shadow or the worker's environment, at an
    endpoint of the sender's choosing: refused by the worker's rule, nothing sent there
    (issue 20 item 2)."""
    from tests.framework.test_secret_policy import Listener

    listener = Listener()
    try:
        for ref, rule in (("file:/etc/shadow", "not under an allowed secret directory"),
                          ("env:KSA_DATABASE_URL", "KSA_DATABASE_URL matches no allowed "
                                                   "secret name pattern")):
            target = {"name": "exfil", "endpoints": [f"127.0.0.1:{listener.port}"],
                      "auth": {"username": "default", "password": ref}}
            for task in ("diagnose.redis", "health.redis"):
                r = app.send_task(task, kwargs={"target": target}).get(timeout=20)
                err = r["result"]["errors"]["_config"]
                assert err.startswith(f"auth.password: {ref} refused: {rule}"), err
                assert "KSA_SECRET_" in err
            a = app.send_task("action.redis", args=(target, "slowlog_reset")).get(timeout=20)
            assert f"auth.password: {ref} refused: {rule}" in str(a), a
        assert listener.accepted == 0
    finally:
        listener.close()
    assert b"root:" not in worker.log.read_bytes()
