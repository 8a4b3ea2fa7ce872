"""Flower shows the workers and the diagnose/health tasks, checked as a person would:
headless Chromium renders its pages. No password appears there either. Flower is
started as docs/fleet.md says (``ksa flower``): its task list has a result column that
starts with the verdict (issue 25.3), it binds 127.0.0.1, basic auth is by reference."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, SECRET, require

pytestmark = pytest.mark.timeout(180)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def flower(worker: Any) -> Iterator[str]:
    require(shutil.which("chromium") is not None, "chromium (apt-get install -y chromium)")
    port = _free_port()
    log = open(worker.home / "flower.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "flower",
                             f"--port={port}"],
                            env=worker.env, cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/healthcheck", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def render(url: str) -> str:
    """The page's DOM after its scripts ran (Flower fills its tables by XHR)."""
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                              "--virtual-time-budget=10000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=60)
    return out.stdout


def known_by_name(url: str, tasks: dict[str, str]) -> bool:
    """Flower's state lists each of ``tasks`` (id -> name) under its name."""
    try:
        rows = json.loads(flower_state(url)).get("data", [])
    except ValueError:
        return False
    names = {row.get("uuid"): row.get("name") for row in rows if isinstance(row, dict)}
    return all(names.get(task_id) == name for task_id, name in tasks.items())


def flower_state(url: str) -> str:
    """The task table's data as Flower serves it to its page (its XHR endpoint)."""
    try:
        query = ("draw=1&start=0&length=100&order%5B0%5D%5Bcolumn%5D=0"
                 "&columns%5B0%5D%5Bdata%5D=name&order%5B0%5D%5Bdir%5D=asc")
        with urllib.request.urlopen(f"{url}/tasks/datatable?{query}", timeout=5) as resp:
            return str(resp.read().decode())
    except OSError as e:
        return f"unavailable: {e}"


def test_flower_shows_tasks_and_a_success(flower: str, app: Any, worker: Any) -> None:
    target = {"name": "flower-secret", "endpoints": ["127.0.0.1:1"],
              "auth": {"password": "env:KSA_TEST_SECRET"}, "options": {"behaviour": "secret"}}
    dom, seen = "", []
    for _ in range(6):
        # Flower learns of tasks from worker events, and only of those sent after its
        # event receiver subscribed (it may still be starting): send, look a few times,
        # and send again if it saw nothing
        ok = app.send_task("diagnose.faulty", kwargs={"target": target, "force": True})
        health = app.send_task("health.tcp",
                               kwargs={"target": {"endpoints": ["127.0.0.1:6379"]}})
        ok_result = ok.get(timeout=20)
        assert ok_result["outcome"] == "completed"
        assert health.get(timeout=20)["status"] == "healthy"
        # wait until Flower's own state has both under their names (the table the page
        # fetches), so that the browser is asked only once the data is there, however
        # loaded the machine. A receiver that subscribed between a task's received and
        # succeeded events lists it by id only, with no name, for good: send again
        tasks = {ok.id: "diagnose.faulty", health.id: "health.tcp"}
        for _ in range(40):
            if known_by_name(flower, tasks):
                break
            time.sleep(0.25)
        seen.append(known_by_name(flower, tasks))
        if not seen[-1]:
            continue
        for _ in range(3):
            dom = render(f"{flower}/tasks")
            if all(task_id in dom and name in dom for task_id, name in tasks.items()):
                break
            time.sleep(0.5)
        if all(task_id in dom and name in dom for task_id, name in tasks.items()):
            break
    # which side failed: Flower's own state (events) or the page the browser rendered
    assert "diagnose.faulty" in dom and "health.tcp" in dom, (
        f"Flower's state had both tasks by name on tries {seen}; its log ends: "
        f"{(worker.home / 'flower.log').read_text()[-1500:]}; the page ends: {dom[-800:]}")
    assert "SUCCESS" in dom
    assert ok.id in dom
    # the list's result column: the verdict, not only SUCCESS (issue 25.3)
    assert ">Result<" in dom
    rows = {r["uuid"]: r for r in json.loads(flower_state(flower))["data"]}
    assert rows[ok.id]["result"].startswith(f"{{'summary': '{ok_result['summary']}'")
    assert f"{{'summary': '{ok_result['summary']}'" in dom
    task_page = render(f"{flower}/task/{ok.id}")
    assert "env:KSA_TEST_SECRET" in task_page  # the reference is shown, never the value
    assert "SUCCESS" in task_page
    # the result's repr starts with its one-line summary, readable in Flower
    assert f"{{'summary': '{ok_result['summary']}'" in task_page
    workers_page = render(f"{flower}/workers")
    assert "rel-" in workers_page  # the worker, by its node name
    for page in (dom, task_page, workers_page):
        assert SECRET not in page


def test_ksa_flower_binds_loopback_and_takes_basic_auth_by_reference(worker: Any) -> None:
    def ksa_flower(*args: str, **env: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "flower", *args],
                                env={**worker.env, **env}, cwd=str(ROOT),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    open_wide = ksa_flower("--host", "0.0.0.0", "--port", str(_free_port()))
    out, _ = open_wide.communicate(timeout=30)
    assert open_wide.returncode == 2
    assert out.decode().strip() == (
        "ksa: error: flower: binding 0.0.0.0 shows the workers and tasks beyond this machine: "
        "give basic-auth credentials (--user NAME --password-ref env:NAME), or bind 127.0.0.1")
    port = _free_port()
    proc = ksa_flower("--port", str(port), "--user", "ops", "--password-ref",
                      "env:KSA_TEST_FLOWER_PW", KSA_TEST_FLOWER_PW="Fl0wer-pw")
    url = f"http://127.0.0.1:{port}/tasks"
    try:
        code = 0
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1)
                code = 200
                break
            except urllib.error.HTTPError as e:
                code = e.code
                break
            except OSError:
                time.sleep(0.2)
        assert code == 401
        req = urllib.request.Request(url, headers={
            "Authorization": "Basic " + base64.b64encode(b"ops:Fl0wer-pw").decode()})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        assert b"Fl0wer-pw" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()
