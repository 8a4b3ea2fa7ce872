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
    fleet.write_text("targets:\n  - {name: cache-1, type: redis, endpoints: ['127.0.0.1:9'],"
                     " interval: 3600, health_interval: 0}\n"
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


def test_a_target_removed_from_the_fleet_is_resolved_and_leaves_the_view(tmp_path: Path) -> None:
    """Issue 20.7: a removed critical target was re-sent to Alertmanager for ever and
    stayed in the view and /metrics. Removed from the fleet file: its alert is resolved
    (endsAt now) within one reload, it leaves the view; its history stays."""
    receiver = Receiver()
    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    store.migrate()
    finding = Finding(code="redis.memory.oom", category="memory", severity=Severity.CRITICAL,
                      title="Out of memory", evidence={"used": 1}, suggestion="Raise maxmemory.")
    for name in ("cache-1", "cache-2"):
        store.record_run(f"r-{name}", f"redis:{name}", "redis-diagnostics", (), DiagnosticResult(
            plugin_id="redis-diagnostics", target_name=name, status=Status.CRITICAL,
            started_at=utcnow(), duration=0.01, findings=[finding]), ttl=None)
    fleet = tmp_path / "fleet.yaml"

    def write(names: tuple[str, ...]) -> None:
        fleet.write_text("targets:\n" + "".join(
            f"  - {{name: {n}, type: redis, endpoints: ['127.0.0.1:9'], interval: 3600,"
            " health_interval: 0}\n" for n in names)
            + f"notify: {{alertmanager: ['{receiver.url}'], poll: 0.2, resend: 3600}}\n")

    write(("cache-1", "cache-2"))
    app = create_app(Settings.from_env({"KSA_HOME": str(tmp_path), "KSA_FLEET": str(fleet),
                                        "KSA_DATABASE_URL": store.url.render_as_string(False)}))
    beat = FleetScheduler(app=app, lazy=False)
    try:
        beat.tick()
        deadline = time.monotonic() + 10
        while not receiver.posts and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(a["labels"]["target"] for a in receiver.posts[0][1]) == [
            "cache-1", "cache-2"]
        assert store.fleet_counts().total == 2
        write(("cache-2",))
        beat.reload_fleet(force=True)
        beat.tick()
        deadline = time.monotonic() + 10
        while len(receiver.posts) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        [_, (_, resolved)] = receiver.posts
        assert [(a["labels"]["target"], "startsAt" in a) for a in resolved] == [
            ("cache-1", False)]
        assert resolved[0]["annotations"]["summary"] == "redis target cache-1 left the fleet"
        assert [t.target_key for t in store.all_targets()] == ["redis:cache-2"]
        assert store.target("redis:cache-1") is None
        assert [r.run_id for r in store.history("redis:cache-1")] == ["r-cache-1"]
        time.sleep(1)  # several polls later: nothing re-sent about it
        assert len(receiver.posts) == 2
    finally:
        beat.close()
        receiver.close()
        store.dispose()
