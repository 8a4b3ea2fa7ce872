"""``ksa results`` as a user runs it: a subprocess on a SQLite file the workers filled."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubestack_ai.plugins.models import Status
from kubestack_ai.storage import Store
from tests.conftest import free_port

from .storage_factories import finding, result

T0 = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.UTC)


def ksa(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    path = tmp_path_factory.mktemp("cli") / "ksa.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    for i in range(3):
        store.record_run(f"run-a{i}", "redis:cache-1", "redis-diagnostics", ("memory",),
                         result(at=T0 + dt.timedelta(minutes=i),
                                            status=Status.WARNING if i == 2 else Status.HEALTHY,
                                            findings=[finding()] if i == 2
                                            else None),
                         ttl=60)
    store.record_run("run-b0", "mysql:orders", "mysql-diagnostics", (),
                     result(target_name="orders", at=T0), ttl=None)
    store.record_action({"plugin_id": "redis-diagnostics", "target": "cache-1",
                         "action": "slowlog_reset", "params": {}, "ok": True, "error": None,
                         "at": T0.isoformat(), "result": "OK"})
    store.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env["KSA_DATABASE_URL"] = f"sqlite:///{path}"
    env["KSA_HOME"] = str(path.parent / "home-unused")
    return env


def test_latest_per_target_table(filled: dict[str, str]) -> None:
    p = ksa("results", env=filled)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "STARTED", "(UTC)", "PLUGIN", "STATUS", "OUTCOME",
                                "DURATION", "FINDINGS", "CATEGORIES", "RUN"]
    assert lines[1].split()[0] == "mysql:orders" and "run-b0" in lines[1]
    assert lines[2].split()[:4] == ["redis:cache-1", "2026-11-25", "12:02:00Z",
                                    "redis-diagnostics"]
    assert "warning" in lines[2] and "1 warning" in lines[2] and "run-a2" in lines[2]
    assert len(lines) == 3


def test_latest_json(filled: dict[str, str]) -> None:
    p = ksa("results", "--json", env=filled)
    data = json.loads(p.stdout)
    assert [(d["target_key"], d["run_id"]) for d in data] == [("mysql:orders", "run-b0"),
                                                             ("redis:cache-1", "run-a2")]
    assert data[1]["result"]["findings"][0]["code"] == "redis.memory.usage_high"
    assert data[1]["started_at"] == "2026-11-25T12:02:00+00:00"


def test_history_of_one_target(filled: dict[str, str]) -> None:
    p = ksa("results", "redis:cache-1", "--findings", env=filled)
    assert p.returncode == 0, p.stderr
    runs = [line.split()[-1] for line in p.stdout.splitlines()[1:4]]
    assert runs == ["run-a2", "run-a1", "run-a0"]
    assert "[WARN] redis.memory.usage_high: Memory use is 93% of maxmemory" in p.stdout
    assert len(json.loads(ksa("results", "redis:cache-1", "-n", "2", "--json",
                              env=filled).stdout)) == 2


def test_unknown_target_names_the_stored_ones(filled: dict[str, str]) -> None:
    p = ksa("results", "redis:nope", env=filled)
    assert p.returncode == 2
    assert p.stderr.strip() == ("ksa: error: no runs stored for target 'redis:nope'; "
                                "stored targets: mysql:orders, redis:cache-1")


def test_audit_log(filled: dict[str, str]) -> None:
    p = ksa("results", "--audit", env=filled)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].split() == ["AT", "(UTC)", "WHO", "TARGET", "ACTION",
                                                "PARAMS", "OUTCOME", "DURATION", "RESULT", "/",
                                                "ERROR"]
    # a record written before who/outcome/duration existed: outcome from ok
    assert p.stdout.splitlines()[1].split() == ["2026-11-25", "12:00:00Z", "-", "cache-1",
                                                "slowlog_reset", "-", "succeeded", "0.0", "ms",
                                                "OK"]


def test_db_option_and_default_file(filled: dict[str, str], tmp_path: Path) -> None:
    env = dict(filled)
    del env["KSA_DATABASE_URL"]
    env["KSA_HOME"] = str(tmp_path / "home")
    p = ksa("results", env=env)  # the default SQLite file, created empty
    assert (p.returncode, p.stdout.strip()) == (0, "no results stored yet")
    assert (tmp_path / "home" / "ksa.db").exists()
    p = ksa("results", "--db", filled["KSA_DATABASE_URL"], "--json", env=env)
    assert len(json.loads(p.stdout)) == 2


def test_unreachable_database_is_one_clear_line(filled: dict[str, str]) -> None:
    url = f"postgresql://ksa:Sup3rS3cret@127.0.0.1:{free_port()}/ksa"
    p = ksa("results", "--db", url, env=filled)
    assert p.returncode == 3
    assert "Sup3rS3cret" not in p.stderr + p.stdout
    assert p.stderr.startswith("ksa: error: storage database postgresql+psycopg://ksa:***@")
    assert len(p.stderr.strip().splitlines()) == 1
