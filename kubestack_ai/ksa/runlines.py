"""``ksa run``'s terminal: one line per completed run, read from storage.

The worker logs every task at INFO only with ``--verbose``; by default the operator sees
what the fleet is doing as lines like

    22:53:10  redis:cache-1  critical  redis.memory.usage_high: Memory usage 99% ...  12.3 ms

from the latest-result table (changed rows, by index), whichever worker ran them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

log = logging.getLogger(__name__)

OVERLAP = dt.timedelta(seconds=30)
"""Rows are read from this far back: another process's clock may lag ours."""


def run_line(t: Any) -> str:
    """One line for a target's latest run (a ``storage.TargetRecord``)."""
    worst = f"{t.worst_code}: {t.worst_title}" if t.worst_code else "-"
    if len(worst) > 90:
        worst = worst[:87] + "..."
    outcome = "" if t.outcome == "completed" else f"  ({t.outcome})"
    return (f"{t.started_at.astimezone():%H:%M:%S}  {t.target_key}  {t.status:<8}  {worst}  "
            f"{t.duration * 1000:.1f} ms{outcome}")


class RunLines:
    """Lines for runs recorded since the last call (each run once)."""

    def __init__(self, store: Any) -> None:
        from kubestack_ai.plugins.models import utcnow  # noqa: PLC0415

        self.store = store
        self._since = utcnow()
        self._seen: dict[str, str] = {}
        self._now = utcnow

    def poll(self) -> list[str]:
        from kubestack_ai.storage import StorageError  # noqa: PLC0415

        now = self._now()
        try:
            rows = self.store.targets_changed(self._since - OVERLAP)
        except StorageError as e:  # the workers keep running; say so once per poll
            log.debug("ksa run: cannot read runs: %s", e)
            return []
        self._since = now
        out = []
        for t in rows:
            if self._seen.get(t.target_key) != t.run_id:
                self._seen[t.target_key] = t.run_id
                out.append(run_line(t))
        return out
