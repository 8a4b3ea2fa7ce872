"""The README's first steps on this machine: examples/fleet.yaml diagnoses only servers
that run here (no target is unreachable on the first `ksa results`), and the README's
commands start a local Kafka-protocol broker (Tansu, from the test extra) that
`ksa diagnose kafka` reaches.

The example is read as committed (``git show HEAD:``), not from the working tree: a
newcomer who edits it ("Add Kafka") must not fail the suite (issue 25.4); the README
tells users to copy it to a fleet file of their own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from kubestack_ai.plugins import PluginManager, Status
from kubestack_ai.scheduler import Fleet, parse_fleet
from kubestack_ai.scheduler.yamlfast import load_yaml
from tests.conftest import free_port, port_open, require

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/fleet.yaml"


def example_fleet() -> Fleet:
    """The example fleet as committed; the file itself outside a git checkout."""
    out = subprocess.run(["git", "show", f"HEAD:{EXAMPLE}"], cwd=ROOT, capture_output=True,
                         timeout=30)
    text = out.stdout if out.returncode == 0 else (ROOT / EXAMPLE).read_bytes()
    return parse_fleet(load_yaml(text), EXAMPLE)


def test_example_fleet_is_valid() -> None:
    # what a fresh machine runs (test_every_example_target_is_reachable_here diagnoses them)
    assert {t.target.type for t in example_fleet().targets} == {"redis", "mysql", "tcp"}


def test_every_example_target_is_reachable_here() -> None:
    require(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    require(port_open("127.0.0.1", 3306), "MariaDB on 127.0.0.1:3306")
    fleet = example_fleet()
    m = PluginManager()
    try:
        for entry in fleet.targets:
            r = m.health_check(entry.target)
            assert r.status is Status.HEALTHY, (entry.target.key, r.findings, r.errors)
    finally:
        m.stop_all()
    # no pointer to a file the repository does not have
    out = subprocess.run(["git", "grep", "-l", "ENVIRONMENT" + ".md"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.stdout == "", out.stdout


def readme_kafka_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- add-kafka -->\n```bash\n(.*?)```", text, re.S)
    assert block is not None, "the README's 'Add Kafka' commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_the_readme_starts_a_kafka_broker_that_ksa_reaches() -> None:
    bin_dir = f"{Path(sys.executable).parent}/"
    port = str(free_port())
    # the README's lines as a user pastes them (but the install, done already), with a
    # free port for 9092; the broker runs in the background of this shell
    lines = [c.replace("9092", port).replace(".venv/bin/", bin_dir)
             for c in readme_kafka_commands() if "pip install" not in c]
    p = subprocess.Popen(["bash", "-c", "\n".join([*lines, "echo README-DONE", "wait"])],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out = ""
        t0 = time.monotonic()
        assert p.stdout is not None
        while time.monotonic() - t0 < 60 and "README-DONE" not in out:
            line = p.stdout.readline()
            if not line:
                break
            out += line
        assert f"127.0.0.1:{port}: " in out and "(kafka-diagnostics " in out, out
        assert "connection.unreachable" not in out and "README-DONE" in out, out
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(10)
        if p.stdout is not None:
            p.stdout.close()
