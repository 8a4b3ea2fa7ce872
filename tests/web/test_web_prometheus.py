"""A real Prometheus scrapes ``/metrics`` (with its optional token) and evaluates the
rules shipped in examples/prometheus: the verdicts are queryable, the critical target's
alerts fire, the healthy one's do not."""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

from .conftest import ROOT, Fleet, Web, need_bin, served, until, web_view

RULES = ROOT / "examples" / "prometheus" / "ksa-rules.yml"


def _get(url: str, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read()


def test_example_rules_and_config_pass_promtool() -> None:
    promtool = need_bin("promtool", "prometheus")
    for what, path in (("rules", RULES), ("config", RULES.parent / "prometheus.yml")):
        out = subprocess.run([promtool, "check", what, str(path)], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def metered(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Web, Path]]:
    tmp = tmp_path_factory.mktemp("metered")
    token = tmp / "secrets" / "metrics-token"  # $KSA_HOME/secrets: allowed by default
    token.parent.mkdir()
    token.write_text("s3cret-scrape-token\n")
    with web_view(fleet.url, tmp, "--metrics-token-ref", f"file:{token}") as w:
        yield w, token


def test_metrics_token_is_required_when_set(metered: tuple[Web, Path]) -> None:
    web, _ = metered
    with pytest.raises(urllib.error.HTTPError) as e:
        _get(web.url + "/metrics")
    assert e.value.code == 401
    e.value.close()
    body = _get(web.url + "/metrics", {"Authorization": "Bearer s3cret-scrape-token"}).decode()
    assert 'ksa_target_status{target="cache-critical",type="redis"} 2.0' in body
    assert "s3cret" not in body
    # the pages have no credentials set: open on 127.0.0.1
    assert _get(web.url + "/api/targets")


@pytest.fixture(scope="module")
def prometheus(metered: tuple[Web, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = need_bin("prometheus", "prometheus")
    web, token = metered
    tmp = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "ksa",
                            "authorization": {"credentials_file": str(token)},
                            "static_configs": [{"targets": [web.url.removeprefix("http://")]}]}],
    }))
    url = f"http://127.0.0.1:{port}"
    with served([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                f"{url}/-/ready", tmp / "prometheus.log"):
        yield url




def test_prometheus_scrapes_the_verdicts_and_a_rule_fires(prometheus: str) -> None:
    def statuses() -> dict[str, float] | None:
        q = urllib.parse.quote("ksa_target_status")
        data = json.loads(_get(f"{prometheus}/api/v1/query?query={q}"))["data"]["result"]
        got = {r["metric"]["target"]: float(r["value"][1]) for r in data}
        return got if len(got) == 3 else None

    assert until(statuses) == {"cache-healthy": 0.0, "cache-warning": 1.0, "cache-critical": 2.0}
    q = urllib.parse.quote('ksa_finding_active{target="cache-critical"}')
    codes = {r["metric"]["code"]: r["metric"]["severity"] for r in
             json.loads(_get(f"{prometheus}/api/v1/query?query={q}"))["data"]["result"]}
    assert codes["redis.memory.noeviction_near_limit"] == "critical"

    def firing() -> set[tuple[str, str]] | None:
        alerts = json.loads(_get(f"{prometheus}/api/v1/alerts"))["data"]["alerts"]
        got = {(a["labels"]["alertname"], a["labels"]["target"]) for a in alerts
               if a["state"] == "firing"}
        return got if ("KsaTargetCritical", "cache-critical") in got else None

    got = until(firing)
    assert ("KsaRedisNoevictionNearLimit", "cache-critical") in got
    assert not {t for _, t in got} - {"cache-critical"}  # nothing for the others
