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


def test_store_is_a_facade_over_its_collaborators(tmp_path) -> None:
    """Each public method of ``Store`` is one of a collaborator's, by the same name (the
    facade adds none of its own); the surface is pinned here, as the manager's is."""
    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    parts = {"db": "Database", "runs": "Runs", "fleet": "Fleet", "members": "Members",
             "states": "PluginStates", "audit": "Audit", "retention": "Retention",
             "trends": "Trends"}
    assert {p: type(getattr(store, p)).__name__ for p in parts} == parts
    methods = {n for n in dir(Store) if not n.startswith("_")} - {"engine"}
    by_part: dict[str, set[str]] = {}
    for name in methods:
        bound = getattr(store, name)
        owner = next(p for p in parts if bound.__self__ is getattr(store, p))
        assert bound.__func__ is getattr(Store, name), name
        by_part.setdefault(owner, set()).add(name)
    assert by_part == {
        "db": {"migrate", "schema_revision", "dispose", "dispose_abandoned"},
        "runs": {"record_run", "cached_result", "invalidate", "purge_expired",
                 "latest_results", "history", "get_run", "snapshots", "plugin_runs"},
        "fleet": {"fleet_counts", "fleet_targets", "fleet_page", "all_targets", "metric_rows",
                  "targets_changed", "targets_at_least", "target", "run_summaries",
                  "finding_spans", "plugin_targets", "run_resources", "host_resources"},
        "members": {"set_fleet", "fleet_members", "fleet_key_for", "forget", "prune_adhoc"},
        "states": {"get_plugin_state", "list_plugin_states", "set_plugin_state",
                   "request_reload", "record_reload", "request_rollback"},
        "audit": {"record_action", "update_action", "end_started_action",
                  "close_abandoned_actions", "audit_log"},
        "retention": {"prune", "purge_history", "rollups"},
        "trends": {"metric_points", "status_strips"},
    }
    assert store.engine is store.db.engine
    assert repr(store) == f"Store({store.masked_url!r})"


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
