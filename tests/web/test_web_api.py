"""The JSON API, as a script would use it: the same fleet the pages show."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .conftest import Fleet, Web


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def test_fleet_api_counts_filters_and_fields(web: Web, fleet: Fleet) -> None:
    code, data = _get(web.url + "/api/targets")
    assert code == 200
    assert data["counts"]["by_status"] == {"critical": 1, "warning": 1, "unknown": 0,
                                           "healthy": 1, "stale": 0}
    assert data["counts"]["by_type"] == {"redis": 3} and data["total"] == 3
    crit = data["targets"][0]  # worst first
    assert crit["key"] == "redis:cache-critical" and crit["status"] == "critical"
    assert crit["worst_finding"]["code"].startswith("redis.memory.")
    assert crit["status_runs"] == 2 and crit["runs"]["completed"] == 2
    assert crit["stale"] is False and crit["outcome"] == "completed"
    for field in ("last_run", "status_since", "duration", "findings", "plugin_id"):
        assert field in crit
    code, data = _get(web.url + "/api/targets?status=warning")
    assert [t["name"] for t in data["targets"]] == ["cache-warning"]
    code, data = _get(web.url + "/api/targets?q=heal&type=redis")
    assert [t["name"] for t in data["targets"]] == ["cache-healthy"]
    code, data = _get(web.url + "/api/targets?limit=x")
    assert code == 400 and data["error"] == "limit must be a number"


def test_target_api_and_history(web: Web, fleet: Fleet) -> None:
    code, t = _get(web.url + "/api/targets/redis%3Acache-critical")
    assert code == 200
    assert t["result"]["status"] == "critical"
    assert {f["code"] for f in t["result"]["findings"]} >= {"redis.memory.noeviction_near_limit"}
    assert {s["state"] for s in t["finding_history"]} == {"ongoing"}
    assert t["timeline"] == [{"status": "critical", "from": t["timeline"][0]["from"],
                              "to": t["last_run"], "runs": 2}]
    assert [r["outcome"] for r in t["recent_runs"]] == ["completed", "completed"]
    assert t["audit"] == []
    code, h = _get(web.url + "/api/targets/redis%3Acache-critical/history?limit=1")
    assert code == 200 and len(h["runs"]) == 1 and h["runs"][0]["run_id"] == t["run_id"]
    code, err = _get(web.url + "/api/targets/redis%3Anope")
    assert code == 404 and err["error"] == "no runs of target 'redis:nope' in storage"
