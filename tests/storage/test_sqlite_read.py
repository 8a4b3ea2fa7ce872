"""``storage.sqlite_read``: the plugin state ``ksa plugin list`` reads without SQLAlchemy
is what ``Store.list_plugin_states`` reads, from the same table and columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kubestack_ai.storage import Store
from kubestack_ai.storage.models import PluginStateRow
from kubestack_ai.storage.sqlite_read import COLUMNS, TABLE, read_plugin_states


def test_table_and_columns_are_the_models() -> None:
    assert TABLE == PluginStateRow.__tablename__
    assert COLUMNS == tuple(c.name for c in PluginStateRow.__table__.columns)


def test_reads_what_the_store_reads(tmp_path: Path) -> None:
    path = tmp_path / "ksa.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    try:
        assert read_plugin_states(path) == []
        store.set_plugin_state("a-plugin", enabled=False, config={"thresholds": {"x": 1}},
                               last_error="boom")
        store.request_reload("a-plugin")
        store.record_reload("b-plugin", "/opt/b")
        via_store = store.list_plugin_states()
    finally:
        store.dispose()
    assert len(via_store) == 2
    assert read_plugin_states(path) == via_store


def test_none_when_it_cannot_say(tmp_path: Path) -> None:
    path = tmp_path / "ksa.db"
    assert read_plugin_states(path) is None  # no file: none is created
    assert not path.exists()
    sqlite3.connect(path).close()
    assert read_plugin_states(path) is None  # no table yet (never migrated)
    con = sqlite3.connect(path)
    con.execute(f"CREATE TABLE {TABLE} (plugin_id TEXT PRIMARY KEY, enabled BOOLEAN)")
    con.commit()
    con.close()
    assert read_plugin_states(path) is None  # an older schema: Store migrates it
