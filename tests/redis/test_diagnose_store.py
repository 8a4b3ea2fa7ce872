"""``ksa diagnose`` keeps its runs in the local store (issue 12 item 14): a second run
judges counters against the first (window_source "history"), ``ksa results`` lists them,
``--no-store`` leaves the store alone, a broken store costs a warning, not the diagnosis,
and no secret reaches the database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ksa_env, run_ksa
from .util import Servers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return ksa_env(tmp_path)


def ksa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ksa(*args, env=env)


def diagnose(env: dict[str, str], addr: str, *extra: str) -> tuple[int, dict[str, Any]]:
    p = ksa(env, "diagnose", "redis", addr, "-c", "memory", "--json", *extra)
    assert p.returncode in (0, 1, 2), p.stderr
    assert "warning: storage" not in p.stderr, p.stderr
    return p.returncode, json.loads(p.stdout)


def finding(result: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in result["findings"] if f["code"] == code)


def _evict(srv: Any, prefix: str, n: int) -> None:
    with srv.client() as c:
        c.config_set("maxmemory", "3mb")
        pipe = c.pipeline(transaction=False)
        for i in range(n):
            pipe.set(f"{prefix}{i}", "x" * 10_000)
        pipe.execute()
        c.config_set("maxmemory", "100mb")  # room again: no usage finding in the way


def test_second_diagnose_judges_counters_against_the_first(servers: Servers,
                                                           env: dict[str, str]) -> None:
    srv = servers.start("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    _evict(srv, "a", 600)
    rc, first = diagnose(env, srv.addr)
    ev = finding(first, "redis.memory.evictions")
    # no history yet, and the server started within the window: its evictions since
    # start are recent (issue 24 item 6), a warning over its uptime
    assert rc == 1 and ev["severity"] == "warning" and ev["evidence"]["window_source"] == "uptime"

    # the quiet look-alike: nothing evicted since the stored run
    rc, quiet = diagnose(env, srv.addr)
    ev = finding(quiet, "redis.memory.evictions")
    assert rc == 0 and ev["severity"] == "info", ev
    assert ev["evidence"]["window_source"] == "history"
    assert ev["evidence"]["evicted_keys_in_window"] == 0

    _evict(srv, "b", 200)
    rc, second = diagnose(env, srv.addr)
    ev = finding(second, "redis.memory.evictions")
    assert rc == 1 and ev["severity"] == "warning", ev
    assert ev["evidence"]["window_source"] == "history"
    assert ev["evidence"]["evicted_keys_in_window"] >= 200

    rc, _ = diagnose(env, srv.addr, "--no-store")
    key = f"redis:{srv.addr}"
    p = ksa(env, "results", key, "--json")
    assert p.returncode == 0, p.stderr
    runs = json.loads(p.stdout)
    assert len(runs) == 3  # the --no-store run is not among them
    assert [r["status"] for r in runs] == ["warning", "healthy", "warning"]  # newest first
    assert all(r["plugin_id"] == "redis-diagnostics" for r in runs)
    p = ksa(env, "results")
    assert p.returncode == 0 and key in p.stdout


def test_a_broken_store_costs_a_warning_not_the_diagnosis(servers: Servers,
                                                          env: dict[str, str]) -> None:
    """A store that cannot be opened: the plugin's state (it may be disabled) is the last
    one read on this machine; never read here, the plugin is refused (fail closed, issue
    20 item 8) unless --force."""
    srv = servers.start()
    broken = {**env, "KSA_DATABASE_URL": "sqlite:////dev/null/not-a-dir/ksa.db"}
    p = ksa(broken, "diagnose", "redis", srv.addr, "-c", "memory")
    assert p.returncode == 3, p.stderr
    assert ("plugin 'redis-diagnostics': its state (enabled or disabled) cannot be read from "
            "storage") in p.stderr and "was never read on this machine" in p.stderr
    assert "--force runs it anyway" in p.stderr and "Traceback" not in p.stderr
    p = ksa(env, "diagnose", "redis", srv.addr, "-c", "memory")  # a store that answers
    assert p.returncode == 0, p.stderr
    p = ksa(broken, "diagnose", "redis", srv.addr, "-c", "memory")
    assert p.returncode == 0, p.stderr
    assert "HEALTHY" in p.stdout
    assert "going by the last one read here (enabled)" in p.stderr
    assert "ksa: warning: storage: history not read" in p.stderr
    assert "Traceback" not in p.stderr


def test_no_secret_reaches_the_store(servers: Servers, env: dict[str, str],
                                     tmp_path: Path) -> None:
    secret, wrong = "s3cret-pw-4711", "wr0ng-pw-0815"
    srv = servers.start("--requirepass", secret)
    with_pw = {**env, "REDIS_PW": secret, "BAD_PW": wrong}
    p = ksa(with_pw, "diagnose", "redis", srv.addr, "--password-ref", "env:REDIS_PW",
            "-c", "memory", "-c", "connection")
    assert p.returncode in (0, 1), p.stdout + p.stderr
    p = ksa(with_pw, "diagnose", "redis", srv.addr, "--password-ref", "env:BAD_PW")
    assert p.returncode == 2 and "auth_failed" in p.stdout
    p = ksa(with_pw, "results", f"redis:{srv.addr}", "--json")
    assert len(json.loads(p.stdout)) == 2
    stored = b"".join(f.read_bytes() for f in tmp_path.iterdir() if f.name.startswith("ksa.db"))
    assert stored and secret.encode() not in stored and wrong.encode() not in stored


def test_a_one_off_diagnosis_of_a_fleet_endpoint_is_stored_under_its_target(
        servers: Servers, env: dict[str, str], tmp_path: Path) -> None:
    """Issue 25.1: ``ksa diagnose redis 127.0.0.1:6379`` made a second target beside the
    fleet's ``redis:local-redis`` for the same server; a mistyped port stayed for good."""
    from kubestack_ai.storage import FleetMember, Store

    srv = servers.start()
    port = srv.addr.rsplit(":", 1)[1]
    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    store.migrate()
    store.set_fleet([FleetMember("redis:local-redis", "redis", (srv.addr,), 60.0)])
    try:
        p = ksa(env, "diagnose", "redis", f"localhost:{port}", "-c", "memory")
        assert p.returncode == 0, p.stderr
        assert ("ksa: stored under the fleet's target redis:local-redis (same endpoint)"
                in p.stderr)
        assert store.fleet_counts().total == 1
        assert [r.target_key for r in store.latest_results()] == ["redis:local-redis"]
        # a mistyped port: a one-off target, shown apart, and forgotten on request
        p = ksa(env, "diagnose", "redis", "127.0.0.1:1", "-c", "memory")
        assert p.returncode == 2, p.stderr
        assert store.fleet_page(adhoc=True)[2] == 1
        p = ksa(env, "results", "--forget", "redis:127.0.0.1:1")
        assert (p.returncode, p.stdout) == (0, "forgot redis:127.0.0.1:1: 1 run(s)\n"), p.stderr
        assert store.fleet_page(adhoc=True)[2] == 0
        p = ksa(env, "results", "--forget", "redis:local-redis")
        assert p.returncode == 2
        assert p.stderr == ("ksa: error: --forget: redis:local-redis is in the fleet: "
                            "remove it from the fleet file first (its next run would bring "
                            "it back)\n")
    finally:
        store.dispose()
