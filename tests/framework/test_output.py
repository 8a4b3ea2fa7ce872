"""What ``ksa diagnose`` prints for people: one line per evidence, each fact once."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

from kubestack_ai.ksa.output import render_result
from kubestack_ai.plugins import DiagnosticResult, Finding, Severity, Status
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def ksa(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_a_refused_connection_is_printed_once_and_the_key_is_readable() -> None:
    port = free_port()
    p = ksa("diagnose", "tcp", f"127.0.0.1:{port}")
    assert p.returncode == 2
    assert p.stdout.count("Connection refused") == 1, p.stdout
    assert p.stdout.startswith(f"127.0.0.1:{port}: CRITICAL  (tcp-diagnostics ")
    assert "[ERR ]" not in p.stdout
    full = json.loads(ksa("diagnose", "tcp", f"127.0.0.1:{port}", "--json").stdout)
    assert full["target_name"] == f"127.0.0.1:{port}"  # the key: tcp:127.0.0.1:PORT
    assert full["errors"]["_connect"].endswith("Connection refused")  # scripts keep it


def test_evidence_is_one_line_and_cut_in_the_terminal() -> None:
    page = "<html>\n  <body>\n" + "x" * 500 + "\n  </body>\n</html>"
    r = DiagnosticResult(
        plugin_id="p", target_name="t", status=Status.WARNING,
        started_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC), duration=0.1,
        findings=[Finding(code="p.c.x", category="c", severity=Severity.WARNING, title="T",
                          evidence={"body": page, "n": 1}, suggestion="S")],
        errors={"c2": "line one\nline two"})
    lines = render_result(r).splitlines()
    ev = next(x for x in lines if x.lstrip().startswith("evidence:"))
    assert ev == "         evidence: body=<html> <body> " + "x" * 143 + "..., n=1"
    assert "  [ERR ] c2: line one line two" in lines
    assert json.loads(r.model_dump_json())["findings"][0]["evidence"]["body"] == page


def test_target_options_are_checked_against_each_plugin_schema() -> None:
    p = ksa("diagnose", "tcp", "127.0.0.1:6379", "-o", "bogus=1")
    assert p.returncode == 3
    assert ("  [ERR ] _config: plugin 'tcp-diagnostics': unknown target option(s) bogus "
            "(known: none)") in p.stdout
    p = ksa("diagnose", "redis", "127.0.0.1:6379", "-o", "db=-1", "-o", "master=x")
    assert p.returncode == 3
    assert ("  [ERR ] _config: plugin 'redis-diagnostics': unknown target option(s) master "
            "(known: db, master_name, sentinel_password_ref, sentinel_username); db: -1 is "
            "less than the minimum of 0") in p.stdout
    p = ksa("diagnose", "kafka", "127.0.0.1:9", "-o", "broker_flavor=redpanda")
    assert "broker_flavor: 'redpanda' is not one of ['auto', 'kafka', 'tansu']" in p.stdout
    p = ksa("diagnose", "mysql", "127.0.0.1:9", "-o", "innodb_data_size=exact")
    assert "innodb_data_size: 'exact' is not one of ['tablespaces', 'tables', False]" in p.stdout
