"""The fleet file -> beat entries, and FleetScheduler picking up changes without restart."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.scheduler import FleetError, parse_fleet

FLEET = """
defaults:
  interval: 60
  health_interval: 15
targets:
  - name: cache
    type: redis
    endpoints: ["127.0.0.1:6379"]
    auth: {password: env:CACHE_PW}
    categories: [memory]
  - name: db
    type: mysql
    endpoints: ["127.0.0.1:3306"]
    interval: 120
    health_interval: 0
"""


def test_jobs_carry_references_and_intervals() -> None:
    import yaml

    jobs = {name: (task, kwargs, every) for t in parse_fleet(yaml.safe_load(FLEET)).targets
            for name, task, kwargs, every in t.jobs()}
    assert sorted(jobs) == ["diagnose mysql:db", "diagnose redis:cache", "health redis:cache"]
    assert jobs["diagnose redis:cache"] == (
        "diagnose.redis", {"target": {"name": "cache", "endpoints": ["127.0.0.1:6379"],
                                      "auth": {"password": "env:CACHE_PW"}},
                           "categories": ["memory"], "force": True, "cache_ttl": 60}, 60)
    assert jobs["health redis:cache"][0::2] == ("health.redis", 15)
    assert jobs["diagnose mysql:db"][2] == 120


@pytest.mark.parametrize(("doc", "error"), [
    ({"targets": [{"type": "redis", "endpoints": ["h:1"], "auth": {"password": "plain-pw"}}]},
     "fleet: targets[0].auth.password: Value error, auth.password must be a secret reference "
     "(env:NAME or file:/absolute/path), never the secret itself"),
    ({"targets": [{"type": "redis", "endpoints": ["nohost"]}]},
     "fleet: targets[0].endpoints: Value error, endpoint 'nohost' is not host:port"),
    ({"targets": [{"type": "redis", "endpoints": ["h:1"]}, {"type": "redis", "endpoints": ["h:1"]}]},
     "fleet: targets[1]: duplicate target 'redis:h:1' (give each a distinct name)"),
    ({"targets": [{"type": "redis", "endpoints": ["h:1"], "interval": 0}]},
     "fleet: targets[0].interval: Input should be greater than 0"),
    ({"target": []}, "fleet: unknown keys target (expected: defaults, targets, notify)"),
])
def test_bad_fleet_is_refused_with_the_field_named(doc: Any, error: str) -> None:
    with pytest.raises(FleetError) as e:
        parse_fleet(doc)
    assert str(e.value) == error
    assert "plain-pw" not in str(e.value)


def test_scheduler_follows_the_file(tmp_path: Path) -> None:
    from kubestack_ai.scheduler.beat import FleetScheduler
    from kubestack_ai.workers.factory import create_app
    from kubestack_ai.workers.settings import Settings

    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET)
    app = create_app(Settings.from_env({"KSA_HOME": str(tmp_path), "KSA_FLEET": str(fleet)}))
    try:
        s = FleetScheduler(app=app, lazy=False)
        assert sorted(s.schedule) == ["diagnose mysql:db", "diagnose redis:cache",
                                      "health redis:cache", "ksa retention"]
        cache = s.schedule["diagnose redis:cache"]
        assert cache.due <= time.time()  # the first new target runs at once
        s.dispatch_due()
        kept = cache.last_run_at
        assert kept is not None and cache.total_run_count == 1
        fleet.write_text(FLEET.replace("interval: 120", "interval: 30").replace(
            "  - name: db", "  - name: db2\n    type: tcp\n    endpoints: ['127.0.0.1:9']\n"
                            "  - name: db"))
        os.utime(fleet, ns=(1, 1))  # a different mtime, whatever the clock's resolution
        assert s.reload_fleet()
        assert "diagnose tcp:db2" in s.schedule
        assert s.schedule["diagnose mysql:db"].interval == 30
        assert s.schedule["diagnose redis:cache"].last_run_at == kept
        assert s.schedule["diagnose redis:cache"].due == pytest.approx(kept + 60, abs=1)
        fleet.write_text(textwrap.dedent("targets: [oops"))
        os.utime(fleet, ns=(2, 2))
        assert not s.reload_fleet()  # a broken file keeps the running schedule
        assert len(s.schedule) == 6 and s.fleet_error.startswith(f"fleet file {fleet}: invalid YAML")
        fleet.write_text("targets:\n  - {name: db, type: mysql, endpoints: ['127.0.0.1:3306']}\n")
        os.utime(fleet, ns=(3, 3))
        assert s.reload_fleet()  # removed targets leave the schedule
        assert sorted(s.schedule) == ["diagnose mysql:db", "health mysql:db", "ksa retention"]
        s.lock.release()
    finally:
        app.close()


def test_a_typo_in_defaults_is_reported_once_with_the_closest_field() -> None:
    """Issue 25.6: ``intervall:`` in defaults was reported on every target."""
    doc = {"defaults": {"intervall": 60},
           "targets": [{"type": "redis", "name": n, "endpoints": ["h:1"]} for n in "abc"]}
    with pytest.raises(FleetError) as e:
        parse_fleet(doc)
    assert str(e.value) == (
        "fleet: defaults.intervall: unknown field, did you mean 'interval'? (known: "
        "allow_actions, auth, cache_ttl, categories, endpoints, health_interval, interval, "
        "mode, name, options, thresholds, tls, type)")


def test_an_unknown_type_names_the_closest_one() -> None:
    doc = {"targets": [{"type": "reddis", "endpoints": ["h:1"]}]}
    with pytest.raises(FleetError) as e:
        parse_fleet(doc, known={"redis": ["memory"], "mysql": []})
    assert str(e.value) == ("fleet: targets[0].type: unknown type 'reddis', did you mean "
                            "'redis'? (known: mysql, redis)")
