"""``/metrics`` served from a snapshot: at most twice ``refresh`` old, rebuilt when older,
the storage error (a 503) when there is no snapshot to serve and storage is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubestack_ai.plugins.models import DiagnosticResult, Status, utcnow
from kubestack_ai.storage import StorageError, Store
from kubestack_ai.web.metrics import Snapshots


def _run(store: Store, name: str) -> None:
    store.record_run(f"r-{name}", f"redis:{name}", "redis-diagnostics", (), DiagnosticResult(
        plugin_id="redis-diagnostics", target_name=name, status=Status.WARNING,
        started_at=utcnow(), duration=0.01), ttl=None)


def test_snapshot_age_bounds_and_rebuild(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    store.migrate()
    now = [0.0]
    snaps = Snapshots(store, refresh=1000, clock=lambda: now[0])  # the thread stays asleep
    _run(store, "a")
    first = snaps.scrape()
    assert b'ksa_target_status{target="a",type="redis"} 1.0' in first
    _run(store, "b")
    now[0] += 1500  # younger than twice refresh: the snapshot
    assert snaps.scrape() == first
    now[0] += 600  # older: rebuilt
    assert b'target="b"' in snaps.scrape()
    store.dispose()


def test_no_snapshot_and_storage_down_is_the_storage_error(tmp_path: Path) -> None:
    snaps = Snapshots(Store("sqlite:////etc/hostname/ksa.db"), refresh=1000)
    with pytest.raises(StorageError):
        snaps.scrape()
