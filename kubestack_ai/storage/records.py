"""What the store hands back: plain frozen records, detached from any session."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: reading plugin state imports no pydantic
    from kubestack_ai.plugins.models import DiagnosticResult


@dataclass(frozen=True, slots=True)
class PluginStateRecord:
    plugin_id: str
    enabled: bool
    version: str
    state: str
    config: dict[str, Any]
    last_error: str | None
    generation: int
    updated_at: dt.datetime
    sources: tuple[str, ...] = ()
    """Code locations reloads named, newest last: workers load the newest (none: their
    plugin directories)."""

    @property
    def source(self) -> str | None:
        return self.sources[-1] if self.sources else None


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    target_key: str
    plugin_id: str
    status: str
    outcome: str
    started_at: dt.datetime
    duration: float
    result: DiagnosticResult
    categories: tuple[str, ...] = ()
    recorded_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: dt.datetime
    plugin_id: str
    target: str
    action: str
    ok: bool
    error: str | None
    params: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    who: str = ""
    outcome: str = ""
    """started (no result recorded yet: running, or its process died and nobody has
    closed the row yet), refused, failed, succeeded, killed (its worker child died: the
    hard time limit, a signal), abandoned (still ``started`` long past any time limit)."""
    dry_run: bool = False
    duration: float = 0.0
    plugin_version: str = ""



@dataclass(frozen=True, slots=True)
class RollupRecord:
    """One target's runs of one plugin on one UTC day, as kept after they were pruned."""

    target_key: str
    plugin_id: str
    day: dt.date
    runs: int
    worst_status: str
    statuses: dict[str, int]
    """Runs per status."""
    findings: dict[str, int]
    """Runs in which each finding code was seen."""
    first_at: dt.datetime
    last_at: dt.datetime
