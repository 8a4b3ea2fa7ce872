"""storage: SQLAlchemy persistence for KubeStack AI.

Plugin state shared by all workers, diagnostic results cached with a TTL, the run
history (pruned by age and count, rolled up by day), and the audit log of executed
actions. SQLite file by default, PostgreSQL or MySQL/MariaDB (any of their SQLAlchemy
URLs) in production; the schema is managed by Alembic
(``Store.migrate()``). Imports only ``plugins`` and SQLAlchemy/Alembic.
"""

from __future__ import annotations

from ._base import categories_key, short_key
from ._fleet import OUTCOMES, STATUSES, FindingSpan, FleetCounts, RunSummary, TargetRecord
from ._retention import PruneReport
from ._state import UNSET, AuditLog
from .engine import default_url
from .errors import MigrationError, StorageError, StorageUnavailable
from .records import AuditRecord, PluginStateRecord, RollupRecord, RunRecord
from .store import Store

__all__ = [
    "OUTCOMES", "STATUSES", "FindingSpan", "FleetCounts", "RunSummary", "TargetRecord",
    "UNSET", "AuditLog", "AuditRecord", "MigrationError", "PluginStateRecord", "PruneReport",
    "RollupRecord", "RunRecord",
    "StorageError", "StorageUnavailable", "Store", "categories_key", "default_url",
    "short_key",
]
