"""Notifications, checked against real receivers: a real Alertmanager gets the alert for
the critical Redis target (with the labels operators route on) and shows it resolved
once the fault is removed and the target diagnosed healthy; a webhook gets every status
transition, retried with back-off, and a dead receiver never holds anything up."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.notify import Notifier, NotifyConfig
from tests.conftest import free_port

from .conftest import Fleet, fill, need_bin, served, until


class Receiver:
    """An HTTP endpoint that records JSON POSTs; ``fail`` answers the next N with 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.fail = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.fail:
                    outer.fail -= 1
                    self.send_response(500)
                else:
                    outer.posts.append((self.path, body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def alertmanager(receiver: Receiver, tmp_path: Path) -> Iterator[str]:
    binary = need_bin("prometheus-alertmanager", "prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(json.dumps({
        "route": {"receiver": "test", "group_by": ["alertname", "target"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "test", "webhook_configs": [
            {"url": f"{receiver.url}/am", "send_resolved": True}]}],
    }))
    url = f"http://127.0.0.1:{port}"
    with served([binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                f"{url}/-/ready", tmp_path / "alertmanager.log"):
        yield url


def _am_alerts(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v2/alerts", timeout=5) as resp:
        return list(json.loads(resp.read()))




def test_alertmanager_gets_the_alert_and_then_its_resolution(
        fleet: Fleet, alertmanager: str, receiver: Receiver) -> None:
    config = NotifyConfig(alertmanager=(alertmanager,), min_severity="critical",
                          web_url="http://ksa.example:8080")
    n = Notifier(fleet.store, config)
    try:
        n.poll()
        assert n.sender.flush()
        alerts = _am_alerts(alertmanager)
        assert [a["labels"] for a in alerts] == [{
            "alertname": "KsaTargetUnhealthy", "target": "cache-critical", "type": "redis",
            "severity": "critical"}]  # critical only: the warning target is below min_severity
        alert = alerts[0]
        assert alert["status"]["state"] == "active"
        crit = fleet.store.target("redis:cache-critical")
        assert crit is not None
        for f in crit.findings:
            assert f["title"] in alert["annotations"]["description"]
            assert f["suggestion"] in alert["annotations"]["description"]
        assert alert["generatorURL"] == "http://ksa.example:8080/targets/redis%3Acache-critical"
        fired = until(lambda: [b for p, b in receiver.posts if b["status"] == "firing"])
        assert fired[0]["alerts"][0]["labels"]["target"] == "cache-critical"

        # the fault removed, the target diagnosed healthy: resolved in Alertmanager
        fleet.fix_critical()
        assert str(fleet.diagnose("cache-critical").status) == "healthy"
        n.poll()
        assert n.sender.flush()
        assert until(lambda: not [a for a in _am_alerts(alertmanager)
                                   if a["labels"]["target"] == "cache-critical"])
        resolved = until(lambda: [b for p, b in receiver.posts if b["status"] == "resolved"])
        assert resolved[0]["alerts"][0]["labels"] == alert["labels"]
        assert resolved[0]["alerts"][0]["status"] == "resolved"
    finally:
        n.close()


def test_webhook_on_transitions_with_retries(fleet: Fleet, receiver: Receiver) -> None:
    config = NotifyConfig(webhook=(f"{receiver.url}/hook",), min_severity="warning",
                          retries=2)
    n = Notifier(fleet.store, config)
    try:
        assert n.poll() == 0  # the first poll learns the statuses: a restart is no change
        # a transition: the healthy cache is filled to a noeviction limit
        srv = fleet.servers["cache-healthy"]
        with srv.client() as c:
            c.config_set("maxmemory-policy", "noeviction")
            c.config_set("maxmemory", "3mb")
        fill(srv)
        assert str(fleet.diagnose("cache-healthy").status) == "critical"
        receiver.fail = 2  # the receiver fails twice, then answers: back-off 1 s, 2 s
        t0 = time.monotonic()
        assert n.poll() == 1
        assert time.monotonic() - t0 < 0.5  # queued, not sent inline
        assert n.sender.flush(30)
        assert receiver.fail == 0  # both failures were retried
        [(path, body)] = receiver.posts
        assert path == "/hook"
        assert (body["target"], body["old_status"], body["new_status"]) == (
            "redis:cache-healthy", "healthy", "critical")
        codes = {f["code"] for f in body["findings"]}
        assert "redis.memory.noeviction_near_limit" in codes and body["repeat"] is False
        assert n.poll() == 0  # nothing changed since
    finally:
        n.close()


def test_a_dead_receiver_never_holds_up_a_poll(fleet: Fleet) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    n = Notifier(fleet.store, NotifyConfig(alertmanager=(dead,), webhook=(dead + "/h",),
                                           retries=3))
    try:
        t0 = time.monotonic()
        for _ in range(3):
            n.poll()
        assert time.monotonic() - t0 < 1.0
    finally:
        n._stop.set()
        n.sender.close()


def test_resend_to_alertmanager_and_webhook_repeat_while_it_lasts(
        fleet: Fleet, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    config = NotifyConfig(alertmanager=(receiver.url,), webhook=(f"{receiver.url}/hook/s3cr3t",),
                          min_severity="critical", resend=60, repeat=3600, retries=0)
    n = Notifier(fleet.store, config, clock=lambda: now[0])
    try:
        n.poll()
        assert n.sender.flush()
        first = [b for p, b in receiver.posts if p == "/api/v2/alerts"]
        assert len(first) == 1
        critical = {a["labels"]["target"] for a in first[0]}
        assert critical and all(a["labels"]["severity"] == "critical" for a in first[0])
        now[0] += 30
        n.poll()
        assert n.sender.flush()
        assert len([p for p, _ in receiver.posts if p == "/api/v2/alerts"]) == 1  # not yet
        now[0] += 31
        n.poll()
        assert n.sender.flush()
        alerts = [b for p, b in receiver.posts if p == "/api/v2/alerts"]
        assert len(alerts) == 2 and {a["labels"]["target"] for a in alerts[1]} == critical
        assert not [p for p, _ in receiver.posts if p.startswith("/hook")]  # repeat not due
        now[0] += 3600
        n.poll()
        assert n.sender.flush()
        hooks = [b for p, b in receiver.posts if p.startswith("/hook")]
        assert {b["name"] for b in hooks} == critical and all(b["repeat"] for b in hooks)
        # a receiver failing: logged by scheme and host, never the URL's path (its secret)
        receiver.fail = 5
        now[0] += 3600
        with caplog.at_level("INFO", logger="kubestack_ai.notify"):
            n.poll()
            assert n.sender.flush()
        assert "failed" in caplog.text and receiver.url in caplog.text
        assert "s3cr3t" not in caplog.text
    finally:
        n.close()


def test_an_unknown_run_does_not_resolve_the_alert(tmp_path: Path, receiver: Receiver) -> None:
    from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status, utcnow
    from kubestack_ai.storage import Store

    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    store.migrate()
    oom = Finding(code="redis.memory.oom", category="memory", severity=Severity.CRITICAL,
                  title="Out of memory", evidence={"used": 1}, suggestion="Raise maxmemory.")

    def run(i: int, status: Status, findings: list[Finding]) -> None:
        store.record_run(f"u{i}", "redis:c", "redis-diagnostics", (), DiagnosticResult(
            plugin_id="redis-diagnostics", target_name="c", status=status,
            started_at=utcnow(), duration=0.01, findings=findings,
            errors={} if findings or status is Status.HEALTHY else {"_run": "timed out"}),
            ttl=None)

    n = Notifier(store, NotifyConfig(alertmanager=(receiver.url,), resend=3600))
    try:
        run(1, Status.CRITICAL, [oom])
        n.poll()
        run(2, Status.UNKNOWN, [])
        n.poll()
        run(3, Status.HEALTHY, [])
        n.poll()
        assert n.sender.flush()
        sent = [a for _, batch in receiver.posts for a in batch]
        assert [(a["labels"]["severity"], "startsAt" in a) for a in sent] == [
            ("critical", True), ("critical", False)]  # fired, then resolved only when healthy
    finally:
        n.close()
        store.dispose()
