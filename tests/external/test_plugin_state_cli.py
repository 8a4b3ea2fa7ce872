"""Plugin state that holds everywhere: ``ksa plugin enable|disable`` for every plugin the
manager sees (builtin, plugin folder), ``list``/``info`` showing what storage says,
``ksa diagnose``/``ksa action`` refusing a disabled plugin, and ``info`` for a builtin
giving its manifest-equivalent and its actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .util import EXAMPLES, REPO


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    return {**base, "KSA_HOME": str(tmp_path), "KSA_PLUGIN_PATH": str(EXAMPLES)}


def ksa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60, env=env)


def listed(env: dict[str, str]) -> dict[str, dict[str, object]]:
    p = ksa(env, "plugin", "list", "--json")
    assert p.returncode == 0, p.stderr
    return {r["id"]: r for r in json.loads(p.stdout)}


def test_an_external_plugin_is_disabled_listed_refused_and_forced(env: dict[str, str]) -> None:
    assert listed(env)["http-diagnostics"]["enabled"] is True
    p = ksa(env, "plugin", "disable", "http-diagnostics")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "http-diagnostics: disabled (generation 1)"
    row = listed(env)["http-diagnostics"]
    assert (row["enabled"], row["generation"], row["source"]) == (False, 1, "directory")
    table = ksa(env, "plugin", "list").stdout.splitlines()
    assert any(line.startswith("http-diagnostics") and " DISABLED  1 " in line for line in table)
    info = json.loads(ksa(env, "plugin", "info", "http-diagnostics", "--json").stdout)
    assert info["enabled"] is False and info["generation"] == 1

    p = ksa(env, "diagnose", "http", "127.0.0.1:9")
    assert p.returncode == 3 and p.stdout == ""
    assert p.stderr.strip() == (
        "ksa: error: plugin 'http-diagnostics' is disabled (generation 1): `ksa plugin enable "
        "http-diagnostics` enables it; --force runs it anyway")
    forced = ksa(env, "diagnose", "http", "127.0.0.1:9", "--force")
    assert forced.returncode == 2 and "http.connection.unreachable" in forced.stdout
    assert "running it anyway (--force)" in forced.stderr

    assert ksa(env, "plugin", "enable", "http-diagnostics").stdout.strip() == (
        "http-diagnostics: enabled (generation 2)")
    assert ksa(env, "diagnose", "http", "127.0.0.1:9").returncode == 2


def test_unknown_plugin_lists_every_known_one(env: dict[str, str]) -> None:
    p = ksa(env, "plugin", "disable", "nope")
    assert p.returncode == 2
    assert p.stderr.strip() == ("ksa: error: unknown plugin 'nope' (known: kafka-diagnostics, "
                                "mysql-diagnostics, postgres-diagnostics, redis-diagnostics, "
                                "tcp-diagnostics, "
                                "http-diagnostics)")


def test_a_disabled_builtin_refuses_actions_and_audits_the_refusal(env: dict[str, str]) -> None:
    assert ksa(env, "plugin", "disable", "redis-diagnostics").returncode == 0
    p = ksa(env, "action", "redis", "127.0.0.1:9", "slowlog_reset")
    assert p.returncode == 2 and "slowlog_reset REFUSED" in p.stdout
    [rec] = json.loads(ksa(env, "results", "--audit", "--json").stdout)
    assert (rec["target"], rec["outcome"]) == ("redis:127.0.0.1:9", "refused")
    assert rec["error"].startswith("plugin 'redis-diagnostics' is disabled (generation 1)")


def test_info_of_a_builtin_shows_its_manifest_and_actions(env: dict[str, str]) -> None:
    info = json.loads(ksa(env, "plugin", "info", "redis-diagnostics", "--json").stdout)
    m = info["manifest"]
    assert (m["id"], m["version"], m["api_version"], m["requires"]) == (
        "redis-diagnostics", "1.0.0", "1.0", [])
    assert m["entry"] == "kubestack_ai.plugins.redis.plugin:RedisPlugin"
    from kubestack_ai.plugins.redis.constants import DEFAULTS

    thresholds = m["config_schema"]["properties"]["thresholds"]["properties"]
    assert {k: v["default"] for k, v in thresholds.items()} == DEFAULTS
    assert m["config_schema"]["properties"]["timeouts"]["properties"]["execute"]["default"] == 30
    assert m["target_options"]["db"]["default"] == 0
    specs = {a["name"]: a for a in info["action_specs"]}
    assert specs["kill_idle_clients"]["dangerous"] is False
    assert specs["kill_idle_clients"]["required"] == ["min_idle_seconds"]
    assert specs["flushall"]["dangerous"] is True and specs["flushall"]["dry_run"] is True
    text = ksa(env, "plugin", "info", "mysql-diagnostics").stdout
    assert ("  kill_long_queries [DANGEROUS: run only with --allow kill_long_queries; dry run]"
            in text)
    assert "      -o min_seconds=  (number, >= 1, required): statements running" in text
    assert "manifest (builtin, from its code):" in text


def test_unreadable_plugin_state_refuses_the_plugin_unless_forced(env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    """Fail closed (issue 20, item 8): a CLI process has no earlier state to go by, so a
    plugin whose state storage cannot give is refused as a disabled one is."""
    db = tmp_path / "ksa.db"
    db.write_bytes(b"this is no database" * 300)
    p = ksa(env, "diagnose", "tcp", "127.0.0.1:1")
    assert p.returncode == 3, p.stdout + p.stderr
    assert p.stderr.startswith(
        "ksa: error: plugin 'tcp-diagnostics': its state (enabled or disabled) cannot be read "
        "from storage (")
    assert p.stderr.rstrip().endswith(
        ") and was never read on this machine; refused, as a disabled plugin is; "
        "--force runs it anyway")
    p = ksa(env, "diagnose", "tcp", "127.0.0.1:1", "--force", "--no-store")
    assert p.returncode == 2 and "CRITICAL" in p.stdout, p.stdout + p.stderr
