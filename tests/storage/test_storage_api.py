"""The public surface other packages build on (workers/ imports these names)."""

from __future__ import annotations

import inspect

from kubestack_ai import storage
from kubestack_ai.storage import Store


def test_exported_names() -> None:
    assert set(storage.__all__) == {
        "UNSET", "AuditLog", "AuditRecord", "MigrationError", "PluginStateRecord",
        "PruneReport", "RollupRecord", "RunRecord",
        "StorageError", "StorageUnavailable", "Store", "categories_key", "default_url",
        "short_key", "OUTCOMES", "STATUSES", "FindingSpan", "FleetCounts", "RunSummary",
        "TargetRecord", "FleetMember", "MetricPoint"}
    assert issubclass(storage.StorageUnavailable, storage.StorageError)
    assert issubclass(storage.MigrationError, storage.StorageError)


def test_store_methods_match_the_agreed_interface() -> None:
    sig = {name: list(inspect.signature(getattr(Store, name)).parameters)
           for name in ("migrate", "dispose", "get_plugin_state", "set_plugin_state",
                        "list_plugin_states", "request_reload", "record_run", "cached_result",
                        "purge_expired", "latest_results", "history", "snapshots",
                        "record_action", "update_action", "audit_log")}
    assert sig["record_run"][:7] == ["self", "run_id", "target_key", "plugin_id", "categories",
                                     "result", "ttl"]
    assert sig["set_plugin_state"][:7] == ["self", "plugin_id", "enabled", "version", "state",
                                           "config", "last_error"]
    assert sig["history"] == ["self", "target_key", "limit"]
    assert sig["snapshots"] == ["self", "target_key", "plugin_id", "limit"]
    assert sig["audit_log"] == ["self", "limit", "target"]
    assert sig["update_action"] == ["self", "audit_id", "record"]
    assert inspect.signature(Store.history).parameters["limit"].default == 20
    assert inspect.signature(Store.snapshots).parameters["limit"].default == 10
    assert inspect.signature(Store.audit_log).parameters["limit"].default == 50


def test_default_url(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("KSA_DATABASE_URL", raising=False)
    monkeypatch.setenv("KSA_HOME", str(tmp_path / "home"))
    assert Store().url.database == str(tmp_path / "home" / "ksa.db")
    monkeypatch.setenv("KSA_DATABASE_URL", "postgresql://u:pw@db.example:5432/ksa")
    s = Store()
    assert s.url.drivername == "postgresql+psycopg"
    assert s.masked_url == "postgresql+psycopg://u:***@db.example:5432/ksa"
    assert Store("mysql://root@h/d").url.drivername == "mysql+pymysql"
    assert Store("mysql://root@h/d").url.query["charset"] == "utf8mb4"
