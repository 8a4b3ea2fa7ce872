"""``python -m ksa diagnose mysql`` as a user runs it: JSON out, exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kubestack_ai.plugins import Status
from tests.conftest import free_port
from tests.mysql.mysql_helpers import Instance

ROOT = Path(__file__).resolve().parents[2]


def ksa(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env=env)


def test_cli_json_and_exit_status(ps: Instance) -> None:
    out = ksa("diagnose", "mysql", ps.endpoint, "--user", "root", "--json")
    data = json.loads(out.stdout)
    assert data["plugin_id"] == "mysql-diagnostics"
    assert data["outcome"] == "completed"
    assert out.returncode == Status(data["status"]).exit_code
    assert {f["code"] for f in data["findings"]} >= {"mysql.performance.slow_log_off"}
    assert data["metrics"]["connection.max_connections"] == 12


def test_cli_category_and_text_output(ps: Instance) -> None:
    out = ksa("diagnose", "mysql", ps.endpoint, "--category", "performance",
              "-t", "long_query_time_max_s=5")
    assert out.returncode == 1, out.stderr
    assert "[WARN] mysql.performance.long_query_time_high: long_query_time is 10 s" in out.stdout


def test_cli_unreachable_exit_2(ps: Instance) -> None:
    port = free_port()
    out = ksa("diagnose", "mysql", f"127.0.0.1:{port}", "--json")
    assert out.returncode == 2
    data = json.loads(out.stdout)
    assert [f["code"] for f in data["findings"]] == ["mysql.connection.unreachable"]
