"""``.ci/run`` runs the quality gates (ruff, mypy --strict) before the tests and fails when
either fails; the tools come with the test extra."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_ruff_and_mypy_before_pytest_and_stops_on_failure(tmp_path: Path) -> None:
    script = (ROOT / ".ci" / "run").read_text()
    ruff = script.index(".venv/bin/ruff check . || {")
    mypy = script.index(".venv/bin/mypy --strict || {")
    assert ruff < mypy < script.index(".venv/bin/python -m pytest")
    # the gate's shape, run for real: a failing tool ends the script with 1
    gate = script[ruff:].splitlines()[0].replace(".venv/bin/ruff check .", "false")
    out = subprocess.run(["bash", "-c", f'log() {{ echo "$*"; }}; {gate}; echo after'],
                         capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (1, "ruff check failed\n")
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    assert {d.split(">")[0].split("=")[0] for d in extra} >= {"ruff", "mypy", "types-PyYAML"}
