"""storage: SQLAlchemy persistence for KubeStack AI.

Plugin state shared by all workers, diagnostic results cached with a TTL, the run
history (pruned by age and count, rolled up by day), and the audit log of executed
actions. SQLite file by default, PostgreSQL or MySQL/MariaDB (any of their SQLAlchemy
URLs) in production; the schema is managed by Alembic
(``Store.migrate()``). Imports only ``plugins`` and SQLAlchemy/Alembic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubestack_ai.plugins.pyutil import lazy_exports

if TYPE_CHECKING:
    from ._audit import AuditLog
    from ._base import categories_key, short_key
    from ._fleet import OUTCOMES, STATUSES, FindingSpan, FleetCounts, RunSummary, TargetRecord
    from ._retention import PruneReport
    from ._state import UNSET
    from .engine import default_url
    from .errors import MigrationError, StorageError, StorageUnavailable
    from .members import FleetMember
    from .records import AuditRecord, PluginStateRecord, RollupRecord, RunRecord
    from .store import Store
    from .trends import MetricPoint

# Each name is imported from its module on first use (PEP 562): SQLAlchemy costs a
# start-up ~0.15 s, and the standard-library reader (``sqlite_read``) must not pay it.
_WHERE: dict[str, str] = {
    'categories_key': '_base',
    'short_key': '_base',
    'OUTCOMES': '_fleet',
    'STATUSES': '_fleet',
    'FindingSpan': '_fleet',
    'FleetCounts': '_fleet',
    'RunSummary': '_fleet',
    'TargetRecord': '_fleet',
    'PruneReport': '_retention',
    'UNSET': '_state',
    'AuditLog': '_audit',
    'default_url': 'engine',
    'FleetMember': 'members',
    'MetricPoint': 'trends',
    'MigrationError': 'errors',
    'StorageError': 'errors',
    'StorageUnavailable': 'errors',
    'AuditRecord': 'records',
    'PluginStateRecord': 'records',
    'RollupRecord': 'records',
    'RunRecord': 'records',
    'Store': 'store',
}



__all__ = [
    "OUTCOMES", "STATUSES", "FindingSpan", "FleetCounts", "FleetMember", "MetricPoint",
    "RunSummary", "TargetRecord",
    "UNSET", "AuditLog", "AuditRecord", "MigrationError", "PluginStateRecord", "PruneReport",
    "RollupRecord", "RunRecord",
    "StorageError", "StorageUnavailable", "Store", "categories_key", "default_url",
    "short_key",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)
