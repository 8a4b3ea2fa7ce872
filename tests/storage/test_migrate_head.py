"""``Store.migrate()`` on a store already at head: one SELECT, no Alembic import (every
CLI command and worker start that opens the store pays it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kubestack_ai.storage import Store
from kubestack_ai.storage import migrate as m


def test_head_from_the_files_is_alembics_head() -> None:
    assert m.head_from_files() == m.head()


def test_migrate_at_head_imports_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ksa.db'}"
    store = Store(url)
    try:
        assert store.migrate() is True  # a new file: Alembic creates the schema
        assert m.at_head(store.engine)
        assert store.migrate() is False
    finally:
        store.dispose()
    code = ("import sys; from kubestack_ai.storage import Store; s = Store(sys.argv[1]); "
            "print(s.migrate(), 'alembic' in sys.modules); s.dispose()")
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stdout + out.stderr


def test_an_older_schema_is_not_at_head(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    try:
        assert not m.at_head(store.engine)  # no version table yet
        store.migrate()
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE {m.VERSION_TABLE} SET version_num = '0003'")
        assert not m.at_head(store.engine)
    finally:
        store.dispose()
