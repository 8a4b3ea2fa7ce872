"""postgres-diagnostics wired as the other builtins are: ``ksa diagnose postgres``, the
``diagnose.postgres`` / ``health.postgres`` tasks, fleet targets of ``type: postgres``;
the shared server on 5432 diagnosed read-only; a monitoring role with no more than
pg_monitor gets INFO findings, never errors; auth by reference only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubestack_ai.plugins import PluginManager, Status
from tests.pgserver import PgServer
from tests.postgres.pg_helpers import codes, diagnose, endpoint, finding, sql, target

ROOT = Path(__file__).resolve().parents[2]
ALL = ("connection", "performance", "replication", "maintenance", "schema", "durability",
       "security", "checkpoints")


def ksa(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, env=env)


def test_task_names_and_fleet_type() -> None:
    import yaml

    from kubestack_ai.scheduler import parse_fleet
    from kubestack_ai.workers import app

    assert {"diagnose.postgres", "health.postgres"} <= set(app.tasks)
    fleet = parse_fleet(yaml.safe_load(
        "targets:\n  - {name: db, type: postgres, endpoints: ['127.0.0.1:5432'], "
        "categories: [replication, schema], options: {database: app}}\n"))
    jobs = {name: task for t in fleet.targets for name, task, _, _ in t.jobs()}
    assert jobs == {"diagnose postgres:db": "diagnose.postgres", "health postgres:db": "health.postgres"}


def test_cli_diagnoses_the_own_cluster(pg: PgServer) -> None:
    out = ksa("diagnose", "postgres", endpoint(pg), "--json", "--no-store")
    data = json.loads(out.stdout)
    assert data["plugin_id"] == "postgres-diagnostics" and data["outcome"] == "completed"
    assert out.returncode == Status(data["status"]).exit_code, out.stderr
    assert data["errors"] == {}
    assert set(data["categories"]) == set(ALL)
    # initdb here: fsync=off on the command line, trust in pg_hba.conf
    assert {"postgres.durability.fsync_off", "postgres.security.hba_trust"} <= {
        f["code"] for f in data["findings"]}
    assert "password" not in out.stderr


def test_shared_server_read_only(manager: PluginManager, shared_pg: str) -> None:
    r = diagnose(manager, target(shared_pg))
    assert r.errors == {}, r.errors
    assert r.outcome == "completed"
    assert all(f.code.startswith("postgres.") and f.suggestion for f in r.findings)
    assert r.metrics["connection.max_connections"] > 0


def test_monitoring_role_gets_info_not_errors(manager: PluginManager, pg: PgServer) -> None:
    sql(pg, "DROP ROLE IF EXISTS ksa_mon", "DROP ROLE IF EXISTS ksa_nobody",
        "CREATE ROLE ksa_mon LOGIN IN ROLE pg_monitor", "CREATE ROLE ksa_nobody LOGIN")
    mon = diagnose(manager, target(endpoint(pg), auth={"username": "ksa_mon"}))
    assert mon.errors == {}, mon.errors
    lacking = {f.evidence["what"] for f in mon.findings if f.code.endswith(".privilege_missing")}
    assert lacking == {"roles with MD5 passwords (pg_authid)",
                       "trust lines of pg_hba.conf (pg_hba_file_rules)"}
    f = [f for f in mon.findings if f.evidence.get("what", "").startswith("trust lines")][0]
    assert f.severity.name == "INFO" and f.category == "security"
    assert f.suggestion == ('As a superuser: GRANT SELECT ON pg_hba_file_rules TO "ksa_mon"; '
                            'GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO "ksa_mon";')
    bare = diagnose(manager, target(endpoint(pg), auth={"username": "ksa_nobody"}), "connection")
    assert bare.errors == {}
    f = finding(bare, "postgres.connection.privilege_missing")
    assert f.severity.name == "INFO" and f.suggestion == 'As a superuser: GRANT pg_monitor TO "ksa_nobody";'


@pytest.fixture(scope="module")
def pw_role(pg: PgServer) -> str:
    sql(pg, "DROP ROLE IF EXISTS ksa_pw", "CREATE ROLE ksa_pw LOGIN PASSWORD 's3cret-pw'")
    hba = pg.data / "pg_hba.conf"
    text = hba.read_text()
    if "ksa_pw" not in text:
        hba.write_text("host all ksa_pw 127.0.0.1/32 scram-sha-256\n" + text)
        sql(pg, "SELECT pg_reload_conf()")
    return "ksa_pw"


def test_password_by_reference_and_never_echoed(manager: PluginManager, pg: PgServer, pw_role: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("KSA_TEST_PG_PW", "s3cret-pw")
    ok = diagnose(manager, target(endpoint(pg), auth={"username": pw_role,
                                                      "password": "env:KSA_TEST_PG_PW"}), "connection")
    assert ok.errors == {} and ok.outcome == "completed"
    monkeypatch.setenv("KSA_TEST_PG_PW", "wrong-pw-123")
    # another target (an open session of the first one is reused while it lives)
    bad = diagnose(manager, target(endpoint(pg), name="bad", auth={
        "username": pw_role, "password": "env:KSA_TEST_PG_PW"}))
    f = finding(bad, "postgres.connection.auth_failed")
    assert f.evidence["error"].endswith('FATAL: password authentication failed for user "ksa_pw"')
    assert "wrong-pw-123" not in bad.model_dump_json()
    # a .pgpass, itself named by reference
    monkeypatch.setenv("KSA_SECRET_DIRS", str(tmp_path))  # an allowed secret directory
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg.port}:postgres:{pw_role}:s3cret-pw\n")
    pgpass.chmod(0o600)
    via = diagnose(manager, target(endpoint(pg), auth={"username": pw_role},
                                   options={"passfile": f"file:{pgpass}"}), "connection")
    assert via.errors == {} and via.outcome == "completed"
    with pytest.raises(ValueError, match="must be a secret reference"):  # a literal is refused
        target(endpoint(pg), auth={"username": pw_role, "password": "s3cret-pw"})


def test_pgpass_lines_follow_libpq() -> None:
    from kubestack_ai.plugins.postgres.client import pgpass_password

    text = "# comment\nother:5432:*:u:no\n127.0.0.1:*:app:u:pa\\:ss\n*:*:*:u:fallback\n"
    assert pgpass_password(text, "127.0.0.1", 5433, "app", "u") == "pa:ss"
    assert pgpass_password(text, "10.0.0.1", 5432, "x", "u") == "fallback"
    assert pgpass_password(text, "10.0.0.1", 5432, "x", "v") is None


def test_unreachable_server_is_a_critical_finding(manager: PluginManager) -> None:
    r = diagnose(manager, target("127.0.0.1:1"))
    assert codes(r) == {"postgres.connection.unreachable"} and r.status == Status.CRITICAL


def test_unknown_target_option_is_refused(manager: PluginManager, pg: PgServer) -> None:
    r = diagnose(manager, target(endpoint(pg), options={"sslmod": "require"}))
    assert r.status == Status.UNKNOWN and r.findings == []
    assert r.errors == {"_config": "plugin 'postgres-diagnostics': unknown target option(s) sslmod "
                                   "(known: database, databases, passfile, sslmode, user)"}


def test_refused_at_the_role_connection_limit(manager: PluginManager, pg: PgServer) -> None:
    from tests.postgres.pg_helpers import connect

    sql(pg, "DROP ROLE IF EXISTS ksa_limited", "CREATE ROLE ksa_limited LOGIN CONNECTION LIMIT 1")
    with connect(pg, user="ksa_limited"):
        r = diagnose(manager, target(endpoint(pg), name="limited", auth={"username": "ksa_limited"}))
    f = finding(r, "postgres.connection.too_many_clients")
    assert r.status == Status.CRITICAL
    assert f.title == "Connections refused: the role's connection limit is reached: limited"
    assert f.evidence["error"].endswith('too many connections for role "ksa_limited"')
    assert f.suggestion.endswith('ALTER ROLE "ksa_limited" CONNECTION LIMIT <n>;')
