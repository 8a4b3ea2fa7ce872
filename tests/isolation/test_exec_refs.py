"""exec: references (a command under a secret directory prints an expiring token) and
rotation: a changed secret is what the next run of a warm plugin host gets."""

from __future__ import annotations

import datetime as dt
import json
import stat
import uuid
from pathlib import Path

import pytest

from kubestack_ai.plugins.errors import SecretError
from kubestack_ai.plugins.models import Auth
from kubestack_ai.plugins.secrets import forget_exec, resolve_secret
from kubestack_ai.workers.runtime import Runtime

TOKEN = "tok-Exec-77q"


def command(d: Path, expires_in: float | None, name: str = "token") -> tuple[Path, Path]:
    """A command that prints a token and counts its runs in ``<name>.runs``."""
    runs = d / f"{name}.runs"
    if expires_in is None:
        body = f"print({TOKEN!r})"
    else:
        at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in)).isoformat()
        doc = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
               "status": {"token": TOKEN, "expirationTimestamp": at.replace("+00:00", "Z")}}
        body = f"import json; print(json.dumps({doc!r}))"
    p = d / name
    p.write_text(f"#!/usr/bin/env python3\nopen({str(runs)!r}, 'a').write('x')\n{body}\n")
    p.chmod(0o700)
    return p, runs


@pytest.fixture
def secret_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "secrets"
    d.mkdir()
    monkeypatch.setenv("KSA_SECRET_DIRS", str(d))
    return d


def test_exec_token_is_kept_until_shortly_before_expiry(secret_dir: Path) -> None:
    cmd, runs = command(secret_dir, 3600)
    ref = f"exec:{cmd}"
    assert Auth(password=ref).password == ref  # a valid reference in a target
    forget_exec(ref)
    assert resolve_secret(ref) == TOKEN
    assert resolve_secret(ref) == TOKEN
    assert runs.read_text() == "x"  # one run: the token is good for an hour


def test_exec_token_about_to_expire_is_refreshed(secret_dir: Path) -> None:
    cmd, runs = command(secret_dir, 0.5, "short")
    ref = f"exec:{cmd}"
    forget_exec(ref)
    assert resolve_secret(ref) == TOKEN
    import time

    time.sleep(0.5)  # its refresh point (a tenth of its life before expiry) has passed
    assert resolve_secret(ref) == TOKEN
    assert runs.read_text() == "xx"


def test_exec_outside_the_secret_dirs_or_writable_is_refused(secret_dir: Path,
                                                              tmp_path: Path) -> None:
    cmd, _ = command(tmp_path, None, "elsewhere")
    with pytest.raises(SecretError, match="not under an allowed secret directory"):
        resolve_secret(f"exec:{cmd}")
    cmd, _ = command(secret_dir, None, "loose")
    cmd.chmod(cmd.stat().st_mode | stat.S_IWOTH)
    with pytest.raises(SecretError, match=r"writable by its group or others; refused \(chmod go-w\)"):
        resolve_secret(f"exec:{cmd}")


def test_exec_failure_never_shows_the_output(secret_dir: Path) -> None:
    p = secret_dir / "fails"
    p.write_text(f"#!/bin/sh\necho {TOKEN}\nexit 4\n")
    p.chmod(0o700)
    with pytest.raises(SecretError) as e:
        resolve_secret(f"exec:{p}")
    assert str(e.value) == (f"secret reference 'exec:{p}': the command exited with status 4 "
                            "(its output is not shown)")


def test_a_rotated_secret_reaches_the_next_run_of_a_warm_host(
        runtime: Runtime, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "secrets").mkdir(exist_ok=True)
    f = home / "secrets" / "rotating"  # an allowed secret directory
    f.write_text("first")
    f.chmod(0o600)
    target = {"name": "rotating", "endpoints": ["127.0.0.1:9"],
              "auth": {"password": f"file:{f}"},
              "options": {"attack": "own_secret", "ref": f"file:{f}"}}
    env = runtime.diagnose(str(uuid.uuid4()), "hostile", target, None, True, None)
    assert env["result"]["metrics"]["got"] == "resolved 5 chars"
    host = runtime.hosts.hosts[("hostile-diagnostics", "hostile:rotating")]
    f.write_text("second-value")
    env = runtime.diagnose(str(uuid.uuid4()), "hostile", target, None, True, None)
    assert env["result"]["metrics"]["got"] == "resolved 12 chars"
    assert runtime.hosts.hosts[("hostile-diagnostics", "hostile:rotating")] is host
    assert "second-value" not in json.dumps(env)
