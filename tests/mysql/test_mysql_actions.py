"""Actions: whitelisted, allowed by name, validated, audited."""

from __future__ import annotations

import threading
import time
from typing import Any

import pymysql
import pytest

from kubestack_ai.plugins import ActionRefusedError, ConfigError, PluginManager
from tests.mysql.mysql_helpers import Instance, target


@pytest.fixture()
def audited(manager: PluginManager) -> Any:
    records: list[dict[str, Any]] = []
    manager.audit_hooks.append(records.append)
    yield records
    manager.audit_hooks.remove(records.append)


def test_action_outside_whitelist_is_refused_and_audited(
        manager: PluginManager, ps: Instance, audited: list[dict[str, Any]]) -> None:
    out = manager.execute(target(ps.endpoint), "drop_database", {"name": "app"})
    assert isinstance(out.error, ActionRefusedError)
    assert str(out.error) == ("plugin 'mysql-diagnostics': action 'drop_database' refused: "
                              "not declared by the plugin (declared: kill_long_queries)")
    assert audited[-1]["action"] == "drop_database" and audited[-1]["ok"] is False


def test_kill_needs_to_be_allowed_by_name(manager: PluginManager, ps: Instance,
                                          audited: list[dict[str, Any]]) -> None:
    out = manager.execute(target(ps.endpoint), "kill_long_queries", {"min_seconds": 1})
    assert isinstance(out.error, ActionRefusedError)
    assert "allow it by name" in str(out.error)
    assert audited[-1]["ok"] is False


def test_kill_rejects_bad_parameters(manager: PluginManager, ps: Instance) -> None:
    t = target(ps.endpoint, allow_actions=["kill_long_queries"])
    out = manager.execute(t, "kill_long_queries", {"min_seconds": 0})
    assert isinstance(out.error, ConfigError)
    assert str(out.error) == ("plugin 'mysql-diagnostics': action 'kill_long_queries': "
                              "min_seconds: 0 is less than the minimum of 1")
    out = manager.execute(t, "kill_long_queries", {"min_seconds": 5, "all": True})
    assert str(out.error) == ("plugin 'mysql-diagnostics': action 'kill_long_queries': "
                              "unknown parameter(s) all (known: dry_run, limit, min_seconds, "
                              "user)")


def test_kill_long_queries_kills_only_the_long_one(
        manager: PluginManager, ps: Instance, audited: list[dict[str, Any]]) -> None:
    long_conn, short_conn = ps.connect(), ps.connect()
    results: dict[str, Any] = {}

    def run(name: str, conn: Any, sql: str) -> None:
        with conn.cursor() as cur:
            try:
                cur.execute(sql)
                results[name] = cur.fetchall()
            except pymysql.err.OperationalError as e:
                results[name] = e.args[0]

    t1 = threading.Thread(target=run, args=("long", long_conn, "SELECT SLEEP(20) AS s"))
    t1.start()
    time.sleep(2.2)
    t2 = threading.Thread(target=run, args=("short", short_conn, "SELECT SLEEP(1) AS s"))
    t2.start()
    try:
        t = target(ps.endpoint, allow_actions=["kill_long_queries"])
        dry = manager.execute(t, "kill_long_queries", {"min_seconds": 2, "dry_run": True})
        assert dry.ok, dry.error
        assert [k["id"] for k in dry.value["would_kill"]] == [long_conn.thread_id()]
        out = manager.execute(t, "kill_long_queries", {"min_seconds": 2, "user": "root"})
        assert out.ok, out.error
        assert [k["id"] for k in out.value["killed"]] == [long_conn.thread_id()]
        assert out.value["killed"][0]["query"] == "SELECT SLEEP(20) AS s"
        t1.join(5)
        assert not t1.is_alive()
        assert results["long"] == 1317  # MariaDB: "Query execution was interrupted"
        t2.join(5)
        assert results["short"] == ((0,),)
    finally:
        long_conn.close()
        short_conn.close()
    rec = audited[-1]
    assert (rec["action"], rec["ok"], rec["params"]) == (
        "kill_long_queries", True, {"min_seconds": 2, "user": "root"})
    assert rec["result"]["killed"][0]["id"] == out.value["killed"][0]["id"]


def test_plugin_refuses_unknown_action_itself(ps: Instance) -> None:
    """Behind the sandbox's whitelist, the plugin's own execute refuses too."""
    from kubestack_ai.plugins import Deadline
    from kubestack_ai.plugins.mysql import MySQLPlugin

    plugin = MySQLPlugin()
    plugin.connect(Deadline(10), target(ps.endpoint))
    try:
        with pytest.raises(ActionRefusedError, match="not an action of mysql-diagnostics"):
            plugin.execute(Deadline(5), "flush_hosts", {})
    finally:
        plugin.stop(Deadline(5))
