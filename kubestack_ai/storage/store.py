"""``Store``: plugin state, result cache, run history (pruned, rolled up by day) and audit
log on SQLite, PostgreSQL or MySQL/MariaDB."""

from __future__ import annotations

from ._results import ResultsMixin
from ._retention import RetentionMixin
from ._state import StateMixin
from .members import MembersMixin
from .trends import TrendsMixin


class Store(ResultsMixin, RetentionMixin, StateMixin, MembersMixin, TrendsMixin):
    """The storage of one KubeStack AI deployment.

    ``Store(url)``: a SQLAlchemy URL of SQLite, PostgreSQL, MySQL or MariaDB (another
    database is refused here, with that message); None -> ``$KSA_DATABASE_URL``, else the SQLite file
    ``$KSA_HOME/ksa.db`` (``KSA_HOME`` defaults to ``~/.ksa``). Call ``migrate()`` once
    at start-up. Safe to share between threads; a forked child gets its own engine.
    Every method runs one short transaction and raises ``StorageUnavailable`` when the
    database cannot be reached; the next call after it is back succeeds.
    """
