"""``ksa action`` on real Redis servers of our own: every attempt audited (who, what, the
target, when, outcome, duration), dangerous actions refused unless allowed by name, dry
runs that change nothing, and no action at all when the audit log cannot be written."""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

from ..conftest import ksa_env, run_ksa
from .util import RedisProc, Servers

ROOT = Path(__file__).resolve().parents[2]
WHO = f"{getpass.getuser()}@{socket.gethostname()}"


@pytest.fixture()
def home(tmp_path: Path) -> dict[str, str]:
    return ksa_env(tmp_path)


def ksa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_ksa(*args, env=env)


def audit(env: dict[str, str], key: str | None = None) -> list[dict[str, Any]]:
    p = ksa(env, "results", "--audit", *([key] if key else []), "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


def idle_clients(srv: RedisProc, n: int) -> list[socket.socket]:
    socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(n)]
    for s in socks:
        s.sendall(b"PING\r\n")
        s.recv(16)
    return socks


def test_kill_idle_clients_is_run_and_audited(servers: Servers, home: dict[str, str]) -> None:
    srv = servers.start()
    socks = idle_clients(srv, 4)
    try:
        time.sleep(1.1)
        dry = ksa(home, "action", "redis", srv.addr, "kill_idle_clients", "-o",
                  "min_idle_seconds=1", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.startswith(f"redis:{srv.addr}: kill_idle_clients (dry run) SUCCEEDED")
        with srv.client() as c:
            ids = {int(x["id"]) for x in c.client_list(_type="normal")} - {c.client_id()}
        would = json.loads(dry.stdout.split("would_kill: ", 1)[1].splitlines()[0])
        assert {w["id"] for w in would} == ids and len(ids) == 4

        p = ksa(home, "action", "redis", srv.addr, "kill_idle_clients", "-o",
                "min_idle_seconds=1")
        assert p.returncode == 0, p.stderr
        assert "  killed: 4\n" in p.stdout and '  by_source: {"127.0.0.1": 4}' in p.stdout
        with srv.client() as c:
            assert len(c.client_list(_type="normal")) == 1  # ours
    finally:
        for s in socks:
            s.close()
    log = audit(home, f"redis:{srv.addr}")
    assert [(a["action"], a["dry_run"], a["outcome"]) for a in log] == [
        ("kill_idle_clients", False, "succeeded"), ("kill_idle_clients", True, "succeeded")]
    done = log[0]
    assert done["who"] == WHO and done["params"] == {"min_idle_seconds": 1}
    assert done["result"]["killed"] == 4 and sorted(done["result"]["ids"]) == sorted(ids)
    assert done["duration"] > 0 and done["plugin_id"] == "redis-diagnostics"
    table = ksa(home, "results", "--audit")
    row = table.stdout.splitlines()[1]
    assert WHO in row and f"redis:{srv.addr}" in row and "kill_idle_clients" in row
    assert "succeeded" in row and '"killed": 4' in row


def test_dangerous_action_is_refused_unless_allowed_and_audited_as_refused(
        servers: Servers, home: dict[str, str]) -> None:
    srv = servers.start()
    with srv.client() as c:
        c.set("keep", 1)
    p = ksa(home, "action", "redis", srv.addr, "flushall")
    assert p.returncode == 2
    assert "flushall REFUSED" in p.stdout and "it destroys data" in p.stdout
    assert "  to run it anyway: --allow flushall" in p.stdout
    dry = ksa(home, "action", "redis", srv.addr, "flushall", "--allow", "flushall", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert 'keys_per_db: {"db0": 1}' in dry.stdout
    with srv.client() as c:
        assert c.dbsize() == 1
    ok = ksa(home, "action", "redis", srv.addr, "flushall", "--allow", "flushall", "-o",
             "async=false")
    assert ok.returncode == 0, ok.stderr
    with srv.client() as c:
        assert c.dbsize() == 0
    log = audit(home, f"redis:{srv.addr}")
    assert [(a["outcome"], a["dry_run"]) for a in log] == [
        ("succeeded", False), ("succeeded", True), ("refused", False)]
    assert "it destroys data" in log[2]["error"] and log[2]["who"] == WHO


def test_bad_parameters_are_refused_with_the_known_ones(servers: Servers,
                                                        home: dict[str, str]) -> None:
    srv = servers.start()
    p = ksa(home, "action", "redis", srv.addr, "kill_idle_clients", "-o", "min_idle_seconds=0",
            "-o", "bogus=1")
    assert p.returncode == 2
    assert ("error: plugin 'redis-diagnostics': action 'kill_idle_clients': unknown "
            "parameter(s) bogus (known: dry_run, min_idle_seconds, node); min_idle_seconds: "
            "0 is less than the minimum of 1") in p.stdout
    nope = ksa(home, "action", "redis", srv.addr, "debug_sleep")
    assert nope.returncode == 2 and "not declared by the plugin" in nope.stdout
    assert [a["outcome"] for a in audit(home)] == ["refused", "refused"]


def test_secrets_in_parameters_and_results_are_redacted(servers: Servers,
                                                         home: dict[str, str]) -> None:
    srv = servers.start()
    p = ksa(home, "action", "redis", srv.addr, "config_set", "--allow", "config_set",
            "-o", "name=masterauth", "-o", "value=Top-Secret-42", "--json")
    assert p.returncode == 0, p.stderr
    with srv.client() as c:
        assert c.config_get("masterauth")["masterauth"] == "Top-Secret-42"
    assert "Top-Secret-42" not in p.stdout + p.stderr
    rec = audit(home)[0]
    assert rec["params"] == {"name": "masterauth", "value": "<redacted>"}
    assert rec["result"] == {"name": "masterauth", "old": "", "new": "<redacted>"}
    assert "Top-Secret-42" not in json.dumps(audit(home))


def test_no_audit_log_no_action_unless_no_audit(servers: Servers, home: dict[str, str]) -> None:
    srv = servers.start()
    with srv.client() as c:
        c.config_set("slowlog-log-slower-than", 0)
        c.ping()
        before = c.slowlog_len()
    assert before > 0
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/ksa"
    p = ksa(home, "action", "redis", srv.addr, "slowlog_reset", "--db", dead)
    assert p.returncode == 2
    assert p.stderr.startswith("ksa: error: the audit log cannot be written (storage: ")
    assert p.stderr.rstrip().endswith("slowlog_reset not run (--no-audit runs it without a "
                                      "record)")
    with srv.client() as c:
        assert c.slowlog_len() >= before
    p = ksa(home, "action", "redis", srv.addr, "slowlog_reset", "--db", dead, "--no-audit")
    assert p.returncode == 0, p.stderr
    assert "not audited" in p.stdout and "--no-audit: this action is not recorded" in p.stderr
