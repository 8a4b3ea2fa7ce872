"""storage: SQLAlchemy persistence for KubeStack AI.

Plugin state shared by all workers, diagnostic results cached with a TTL, the run
history (pruned by age and count, rolled up by day), and the audit log of executed
actions. SQLite file by default, any SQLAlchemy
URL (PostgreSQL, MySQL/MariaDB) in production; the schema is managed by Alembic
(``Store.migrate()``). Imports only ``plugins`` and SQLAlchemy/Alembic.
"""

from __future__ import annotations

from ._base import categories_key, short_key
from ._retention import PruneReport
from ._state import UNSET, AuditLog
from .engine import default_url
from .errors import MigrationError, StorageError, StorageUnavailable
from .records import AuditRecord, PluginStateRecord, RollupRecord, RunRecord
from .store import Store

__all__ = [
    "UNSET", "AuditLog", "AuditRecord", "MigrationError", "PluginStateRecord", "PruneReport",
    "RollupRecord", "RunRecord",
    "StorageError", "StorageUnavailable", "Store", "categories_key", "default_url",
    "short_key",
]
