"""Notifications are sent from one place: the beat holding the lock. A standby beat
reads the same ``notify:`` section and sends nothing. A bad section is refused by name."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status, utcnow
from kubestack_ai.scheduler import FleetError
from kubestack_ai.scheduler.beat import STANDBY_POLL, FleetScheduler
from kubestack_ai.scheduler.fleet import parse_fleet
from kubestack_ai.storage import Store
from kubestack_ai.workers.factory import create_app
from kubestack_ai.workers.settings import Settings
from tests.web.test_notify import Receiver


def test_notify_section_is_parsed_and_checked() -> None:
    fleet = parse_fleet({"targets": [], "notify": {"alertmanager": "http://127.0.0.1:9093",
                                                   "min_severity": "critical", "repeat": "4h"}})
    assert fleet.notify is not None
    assert [r.url for r in fleet.notify.alertmanager] == ["http://127.0.0.1:9093"]
    assert fleet.notify.repeat == 4 * 3600
    with pytest.raises(FleetError, match="notify.min_severity"):
        parse_fleet({"targets": [], "notify": {"webhook": ["http://x"], "min_severity": "info"}})
    with pytest.raises(FleetError, match=r"notify.webhook.0.url: .*'ftp://x' is not an http\(s\) URL"):
        parse_fleet({"targets": [], "notify": {"webhook": ["ftp://x"]}})


def test_only_the_beat_holding_the_lock_sends(tmp_path: Path) -> None:
    receiver = Receiver()
    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    store.migrate()
    finding = Finding(code="redis.memory.oom", category="memory", severity=Severity.CRITICAL,
                      title="Out of memory", evidence={"used": 1}, suggestion="Raise maxmemory.")
    store.record_run("r1", "redis:cache-1", "redis-diagnostics", (), DiagnosticResult(
        plugin_id="redis-diagnostics", target_name="cache-1", status=Status.CRITICAL,
        started_at=utcnow(), duration=0.01, findings=[finding]), ttl=None)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("targets:\n  - {name: a, type: tcp, endpoints: ['127.0.0.1:9'],"
                     " interval: 60, health_interval: 0}\n"
                     f"notify: {{alertmanager: ['{receiver.url}'], poll: 0.2}}\n")
    app = create_app(Settings.from_env({"KSA_HOME": str(tmp_path), "KSA_FLEET": str(fleet)}))
    first, second = FleetScheduler(app=app, lazy=False), FleetScheduler(app=app, lazy=False)
    try:
        assert first.notifier is not None and second.notifier is not None
        first.tick()
        assert second.tick() == STANDBY_POLL
        deadline = time.monotonic() + 10
        while not receiver.posts and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)  # several polls later: still one post (nothing changed, no resend due)
        [(path, alerts)] = receiver.posts
        assert path == "/api/v2/alerts"
        assert alerts[0]["labels"] == {"alertname": "KsaTargetUnhealthy", "target": "cache-1",
                                       "type": "redis", "severity": "critical"}
    finally:
        first.close()
        second.close()
        receiver.close()
        store.dispose()
