"""Shared fixtures. Tests talk to real servers; in CI a missing server is a failure."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

CI = bool(os.environ.get("CI"))
ROOT = Path(__file__).resolve().parents[1]
_HOME: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """``ksa diagnose`` stores its runs in $KSA_HOME: the suite's own, never ~/.ksa (tests
    that need a store of their own still set KSA_HOME for their subprocess)."""
    # plugin folders the tests write must not be group-writable whatever the caller's
    # umask: plugins/trust.py refuses them (and says `chmod go-w`)
    os.umask(0o022)
    if not os.environ.get("KSA_HOME"):
        _HOME.append(tempfile.mkdtemp(prefix="ksa-tests-"))
        os.environ["KSA_HOME"] = _HOME[0]


def pytest_unconfigure(config: pytest.Config) -> None:
    for home in _HOME:
        shutil.rmtree(home, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(ok: bool, why: str) -> None:
    """Skip locally when a server is missing; fail in CI."""
    if not ok:
        if CI:
            pytest.fail(f"required service missing in CI: {why}")
        pytest.skip(why)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def ksa_env(home: Path) -> dict[str, str]:
    """The environment of a ``ksa`` process with its own $KSA_HOME and no other KSA_*."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    return {**clean, "KSA_HOME": str(home)}


def run_ksa(*args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``ksa ARGS`` as a user runs it: its own process, from the repository's root."""
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=timeout, env=env)
