"""Plugin state read from a SQLite store with the standard library's ``sqlite3``.

``ksa plugin list`` shows each plugin's stored state (enabled, generation, config);
through ``Store`` that read costs a start-up SQLAlchemy's import (~0.15 s on a 2-core
machine, as much as the rest of the command). This reads the same rows as
``Store.list_plugin_states`` from the default SQLite file, and answers None whenever it
cannot (no such table or column: a schema that ``Store.migrate()`` has not brought up to
date; a locked or broken file): the caller then goes through ``Store``. The table and
its columns are the ORM model's (``models.PluginStateRow``); a test holds them equal.
Never writes, never creates the file.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from .records import PluginStateRecord

TABLE = "ksa_plugin_state"
COLUMNS = ("plugin_id", "enabled", "version", "state", "config", "last_error", "generation",
           "updated_at", "sources")


def read_plugin_states(path: Path, timeout: float = 5.0) -> list[PluginStateRecord] | None:
    """Every stored plugin state in the SQLite file ``path``, by id; None when this
    reader cannot say (the caller reads through ``Store``, which migrates)."""
    if not path.is_file():
        return None
    try:
        # mode=rw: an existing file only (never created here); WAL readers need -shm
        con = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True,
                              timeout=timeout)
        try:
            rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} "
                               "ORDER BY plugin_id").fetchall()
        finally:
            con.close()
        return [PluginStateRecord(
            plugin_id=r[0], enabled=bool(r[1]), version=r[2], state=r[3],
            config=json.loads(r[4]), last_error=r[5], generation=int(r[6]),
            updated_at=dt.datetime.fromisoformat(r[7]).replace(tzinfo=dt.UTC),
            sources=tuple(json.loads(r[8] or "[]"))) for r in rows]
    except (sqlite3.Error, ValueError, TypeError):
        return None
