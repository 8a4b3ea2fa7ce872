"""Input and output at the edges of ``ksa diagnose`` (issue 20 item 9): an option value
that is not YAML is one clear line and the bad-input exit status, and control characters
from the monitored data (a key named with terminal escapes) reach the terminal escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import ksa_env, run_ksa
from .util import Servers

TITLE_AND_CLEAR = "\x1b]0;pwned\x07\x1b[2J"


@pytest.mark.parametrize("option", ["pattern=%", "db=["])
def test_an_option_that_is_not_yaml_is_one_clear_line(tmp_path: Path, option: str) -> None:
    key = option.partition("=")[0]
    p = run_ksa("diagnose", "redis", "127.0.0.1:6379", "-o", option, env=ksa_env(tmp_path))
    assert p.returncode == 3, p.stderr  # bad input: "unknown or error", not 1 ("warning")
    assert "Traceback" not in p.stderr
    assert p.stderr.strip() == (
        f"ksa: error: --option {key}: the value is not valid YAML (values are read as YAML: "
        "5 is a number, [a, b] a list); "
        f"quote a string: --option \"{key}='...'\"")


def test_a_secret_option_that_is_not_yaml_is_not_echoed(tmp_path: Path) -> None:
    p = run_ksa("diagnose", "redis", "127.0.0.1:6379", "-o", "password=%hunter2[",
                env=ksa_env(tmp_path))
    assert p.returncode == 3 and "hunter2" not in p.stderr and "%" not in p.stderr
    assert p.stderr.startswith("ksa: error: --option password: the value is not valid YAML")


def test_action_params_that_are_not_yaml_exit_as_bad_input(tmp_path: Path) -> None:
    p = run_ksa("action", "redis", "127.0.0.1:6379", "kill_idle_clients", "-o",
                "min_idle_seconds=[", "--dry-run", env=ksa_env(tmp_path))
    assert p.returncode == 2, p.stderr  # ksa action: 2 is refused or bad input
    assert p.stderr.startswith("ksa: error: --param min_idle_seconds: the value is not valid")


def test_control_characters_in_any_text_of_a_result_are_escaped() -> None:
    """Every text a plugin builds from the data (titles, string evidence, suggestions,
    errors, the target's name) is printed with its control characters escaped: a check
    that forgets ``!r`` cannot hand the terminal an escape sequence."""
    from kubestack_ai.ksa.output import render_result, table
    from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status, utcnow

    raw = TITLE_AND_CLEAR + "\u202e\n[CRIT] forged line"
    r = DiagnosticResult(
        plugin_id="redis-diagnostics", target_name=raw, status=Status.WARNING,
        started_at=utcnow(), duration=0.01, errors={"keys": raw},
        findings=[Finding(code="redis.memory.big_keys", category="memory",
                          severity=Severity.WARNING, title=f"Big key {raw}",
                          evidence={"key": raw}, suggestion=f"UNLINK {raw}")])
    for out in (render_result(r), table(["KEY"], [[raw]])):
        assert not any(ord(ch) < 32 and ch != "\n" or 0x7f <= ord(ch) < 0xa0 or ch == "\u202e"
                       for ch in out)
        assert r"\x1b]0;pwned\x07\x1b[2J\u202e" in out
        assert "\n[CRIT] forged" not in out


def test_control_characters_from_the_data_are_escaped(servers: Servers, tmp_path: Path) -> None:
    srv = servers.start()
    with srv.client() as c:
        c.set(TITLE_AND_CLEAR, "x" * 20_000)
    p = run_ksa("diagnose", "redis", srv.addr, "-c", "memory", "--no-store",
                "-t", "bigkeys_bytes_warning=10000", env=ksa_env(tmp_path))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "redis.memory.big_keys" in p.stdout
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout
    assert r"\x1b]0;pwned\x07\x1b[2J" in p.stdout  # shown, escaped
