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
    wrong = {**target, "name": "secret-wrong", "auth": {"password": "env:KSA_HOME"}}
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
