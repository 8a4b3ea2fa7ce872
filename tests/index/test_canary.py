"""A/B trial over a fleet of real Redis servers, through a real prefork worker: version 2
of a plugin raises one finding version 1 does not; ``ksa plugin canary`` runs it on a
stable, hash-chosen half of the targets, ``compare`` names that finding, ``promote`` makes
it current; a broken version 3 as canary ends itself past its margin."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.plugins.index.canary import chosen
from tests.workers.conftest import ROOT, RedisServer, Worker, client_app, worker_env

pytestmark = pytest.mark.timeout(180)
PID = "fleetfx"

CODE = '''\
import socket

from kubestack_ai.plugins import MiddlewarePlugin, PluginInfo, Run, Severity, category

VERSION = "{version}"


class P(MiddlewarePlugin):
    def info(self):
        return PluginInfo(id="fleetfx", name="fleetfx", version=VERSION)

    def middleware_type(self):
        return "fx-fleet"

    def connect(self, deadline, target):
        self.target = target
        host, port = target.endpoints[0].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=2)

    def disconnect(self, deadline):
        self.sock.close()

    @category("basic")
    def check_basic(self, run: Run) -> None:
        self.sock.sendall(b"PING\\r\\n")
        reply = self.sock.recv(64).decode().strip()
        self.sock.close()
        run.finding("fxf.basic.pong", Severity.INFO, "the server answered",
                    evidence={{"reply": reply}}, suggestion="nothing to do")
        if VERSION == "2.0.0":
            run.finding("fxf.basic.extra", Severity.WARNING, "version 2 looks closer",
                        evidence={{"version": VERSION}}, suggestion="compare the versions")
{broken}
'''
BROKEN = '''
    def diagnose(self, deadline, options):
        raise RuntimeError("version 3 is broken")
'''


def write_version(base: Path, version: str) -> Path:
    d = base / version / PID
    d.mkdir(parents=True)
    (d / "plugin.yaml").write_text(f"id: {PID}\nname: Fleet fixture\nversion: {version}\n"
                                   "type: middleware\napi_version: \"1.0\"\nentry: plugin:P\n")
    (d / "plugin.py").write_text(CODE.format(version=version,
                                             broken=BROKEN if version == "3.0.0" else ""))
    return d


def ksa(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubestack_ai.ksa", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)


def names(share: float) -> tuple[list[str], list[str]]:
    """Two target names on the canary and two off it, for this plugin and share."""
    on, off = [], []
    for i in range(100):
        n = f"r{i}"
        (on if chosen(PID, f"fx-fleet:{n}", share) else off).append(n)
    return on[:2], off[:2]


def run_all(app: Any, targets: dict[str, int], rounds: int = 1) -> dict[str, set[str]]:
    sent = [(name, app.send_task("diagnose.fx-fleet", kwargs={
        "target": {"name": name, "endpoints": [f"127.0.0.1:{port}"]}, "force": True}))
        for _ in range(rounds) for name, port in targets.items()]
    seen: dict[str, set[str]] = {}
    for name, r in sent:
        out = r.get(timeout=30)
        seen.setdefault(name, set()).add(out["result"]["plugin_version"])
    return seen


def test_canary_compare_promote_and_self_abort(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "trusted_keys").mkdir(parents=True)
    broker = RedisServer(tmp_path)
    fleet = [RedisServer(tmp_path / f"r{i}") for i in range(4) if
             (tmp_path / f"r{i}").mkdir() is None]
    from kubestack_ai.storage import Store

    Store(f"sqlite:///{home}/ksa.db").migrate()
    index = tmp_path / "index"
    env = worker_env(home, KSA_BROKER_URL=broker.url, KSA_PLUGIN_PATH="", KSA_INDEX=str(index))
    assert ksa(env, "index", "keygen", str(tmp_path / "pub")).returncode == 0
    shutil.copy(tmp_path / "pub.pub", home / "trusted_keys")
    for v in ("1.0.0", "2.0.0", "3.0.0"):
        p = ksa(env, "index", "add", str(write_version(tmp_path / "src", v)), "--index",
                str(index), "--key", str(tmp_path / "pub.key"))
        assert p.returncode == 0, p.stderr
    assert ksa(env, "plugin", "install", f"{PID}==1.0.0", "--yes").returncode == 0
    on, off = names(50)
    targets = dict(zip(on + off, (s.port for s in fleet), strict=True))
    w = Worker(home, env, concurrency=2, name="canary")
    app = client_app(env)
    try:
        w.wait_ready()
        assert run_all(app, targets) == {n: {"1.0.0"} for n in targets}

        p = ksa(env, "plugin", "canary", PID, "--version", "2.0.0", "--share", "50", "--yes")
        assert p.returncode == 0, p.stderr
        assert (f"{PID}: canary 2.0.0 on 50% of its targets (the same ones every run), 1.0.0 "
                "on the rest") in p.stdout
        seen = run_all(app, targets, rounds=3)
        assert seen == {**{n: {"2.0.0"} for n in on}, **{n: {"1.0.0"} for n in off}}

        p = ksa(env, "plugin", "compare", PID)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert lines[0].startswith(f"{PID}: canary 2.0.0 on 50% of targets, running, since ")
        assert lines[2].split() == ["runs", "6", "6"]  # during the canary: 2 targets x 3 each
        assert lines[3].split() == ["failures", "0", "0"]
        i = lines.index("finding codes only 2.0.0 raises on the same targets: ")
        assert lines[i + 1] == f"  fxf.basic.extra  (fx-fleet:{on[0]}, fx-fleet:{on[1]})"
        assert "finding codes only 1.0.0 raises on the same targets: none" in lines
        data = json.loads(ksa(env, "plugin", "compare", PID, "--json").stdout)
        assert data["only_canary"] == {"fxf.basic.extra": [f"fx-fleet:{n}" for n in on]}
        assert data["only_current"] == {}

        p = ksa(env, "plugin", "promote", PID)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"{PID}: 2.0.0 promoted, current on every target (was "
                                   "1.0.0)")
        assert run_all(app, targets) == {n: {"2.0.0"} for n in targets}

        p = ksa(env, "plugin", "canary", PID, "--version", "3.0.0", "--share", "50", "--yes",
                "--min-runs", "2", "--margin", "20", "--check-seconds", "0")
        assert p.returncode == 0, p.stderr
        ended = None
        for _ in range(6):
            run_all(app, targets)
            state = json.loads((home / "plugins" / PID / "canary.json").read_text())
            if state["state"] != "running":
                ended = state
                break
        assert ended is not None and ended["state"] == "auto-aborted"
        assert ended["reason"].startswith(f"{PID} 3.0.0 failed ")
        assert ended["reason"].endswith("(0%): more than the margin 20% worse")
        time.sleep(0.2)
        assert run_all(app, targets) == {n: {"2.0.0"} for n in targets}
        p = ksa(env, "plugin", "compare", PID)
        assert "auto-aborted" in p.stdout.splitlines()[0]
        assert p.stdout.splitlines()[1].startswith("ended: fleetfx 3.0.0 failed ")
        assert "canary 3.0.0 ended itself" in w.log.read_text()
    finally:
        w.stop()
        app.close()
        broker.close()
        for s in fleet:
            s.close()
