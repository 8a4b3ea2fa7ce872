"""Every task argument checked before the run, on a real worker: a bad one is a clear
error in the envelope (never a raw exception, never a value that breaks a later write),
sizes are capped, and the worker goes on storing runs afterwards."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.timeout(90)

OK = {"name": "args", "endpoints": ["127.0.0.1:1"], "options": {"behaviour": "ok"}}


def call(app: Any, **kwargs: Any) -> dict[str, Any]:
    return app.send_task("diagnose.faulty", kwargs=kwargs).get(timeout=30)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"target": OK, "force": True, "cache_ttl": "abc"},
     "invalid arguments: cache_ttl must be a number of seconds, not a string"),
    ({"target": OK, "force": True, "cache_ttl": 1e12},
     "invalid arguments: cache_ttl must be between 0 and 604800 seconds"),
    ({"target": OK, "force": True, "cache_ttl": -1},
     "invalid arguments: cache_ttl must be between 0 and 604800 seconds"),
    ({"target": OK, "force": "yes"}, "invalid arguments: force must be true or false, not a string"),
    ({"target": OK, "categories": "work"},
     "invalid arguments: categories must be a list of names, not a string"),
    ({"target": OK, "categories": ["memory"]},
     "invalid arguments: plugin 'faulty-diagnostics': unknown categories memory (known: work)"),
    ({"target": OK, "categories": [1]}, "invalid arguments: categories[0] must be a category name"),
    ({"target": "redis://127.0.0.1:6379"},
     "invalid target: target must be a mapping (a JSON object), not a string"),
    ({"target": ["127.0.0.1:6379"]}, "invalid target: target must be a mapping (a JSON object), not a list"),
    ({"target": None}, "invalid target: target must be a mapping (a JSON object), not null"),
    ({"target": {**OK, "name": "n" * 10_000_000}},
     "invalid target: target.name is 10000000 characters long; at most 200"),
    ({"target": {**OK, "endpoints": ["127.0.0.1:1"] * 65}},
     "invalid target: target.endpoints has 65 entries; at most 64"),
    ({"target": {**OK, "options": {"blob": "x" * 20_000}}},
     "invalid target: target.options is 20012 bytes as JSON; at most 16384"),
])
def test_bad_argument_is_a_clear_envelope_error(app: Any, store: Any, kwargs: dict[str, Any],
                                                error: str) -> None:
    r = call(app, **kwargs)
    assert r["error"].startswith(error), r["error"]
    assert r["outcome"] == "failed" and r["result"] is None and r["stored"] is None
    assert len(r["error"]) < 300  # never the value itself
    assert store.get_run(r["task_id"]) is None


def test_after_bad_arguments_runs_are_still_stored(app: Any, store: Any) -> None:
    call(app, target=OK, force=True, cache_ttl=1e12)
    r = call(app, target=OK, force=True, cache_ttl=30)
    assert r["stored"] is True and r["outcome"] == "completed"
    assert store.get_run(r["task_id"]) is not None
