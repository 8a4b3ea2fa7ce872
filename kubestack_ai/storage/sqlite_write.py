"""``record_reload`` on the default SQLite store with the standard library's ``sqlite3``.

``ksa plugin install`` tells the workers that a plugin's current version moved, as
``Store.record_reload`` does (the new location becomes the newest source, the generation
goes up by one, in one transaction); through ``Store`` that costs a CLI start-up
SQLAlchemy's import (~0.3 s of an install's ~0.5 s). The same row change, written here;
None whenever it cannot (no such table or column: a schema ``Store.migrate()`` has not
brought up to date; a locked or broken file): the caller then goes through ``Store``.
Never creates the file. The table and columns are sqlite_read's (held equal to the ORM
model's by a test).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from .sqlite_read import TABLE


def record_reload(path: Path, plugin_id: str, source: str, timeout: float = 5.0) -> int | None:
    """Append ``source`` to the plugin's sources and bump its generation; the new
    generation, or None when this writer cannot (the caller uses ``Store``)."""
    if not path.is_file():
        return None
    # SQLAlchemy's DateTime on SQLite: naive UTC, microseconds always written
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    try:
        con = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=timeout,
                              isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute(f"SELECT sources, generation FROM {TABLE} WHERE plugin_id = ?",
                              (plugin_id,)).fetchone()
            if row is None:
                gen = 1
                con.execute(f"INSERT INTO {TABLE} (plugin_id, enabled, version, state, config, "
                            "last_error, generation, updated_at, sources) "
                            "VALUES (?, 1, '', 'unloaded', '{}', NULL, 1, ?, ?)",
                            (plugin_id, now, json.dumps([source])))
            else:
                gen = int(row[1]) + 1
                sources = [*json.loads(row[0] or "[]"), source]
                con.execute(f"UPDATE {TABLE} SET sources = ?, generation = ?, updated_at = ? "
                            "WHERE plugin_id = ?", (json.dumps(sources), gen, now, plugin_id))
            con.execute("COMMIT")
            return gen
        finally:
            if con.in_transaction:
                con.execute("ROLLBACK")
            con.close()
    except (sqlite3.Error, ValueError, TypeError):
        return None
