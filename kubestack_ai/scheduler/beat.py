"""FleetScheduler: Celery beat's schedule from the fleet file, re-read while beat runs.

``celery -A kubestack_ai.workers beat`` uses it (the app sets ``beat_scheduler``). The file named by
KSA_FLEET (or ``--fleet`` on ``ksa run``) is checked on every tick (at most every
``beat_max_loop_interval`` = 5 s); a target added, changed or removed takes effect
without restarting beat. Times are UTC. A beat schedules only while it holds the beat
lock (see scheduler/lock.py); a second beat waits as a standby.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import beat

from .fleet import FleetError, load_fleet
from .lock import BeatLock, FileBeatLock, RedisBeatLock

log = logging.getLogger(__name__)

STANDBY_POLL = 2.0
"""Seconds a beat without the lock waits before trying again."""


def make_lock(app: Any) -> BeatLock:
    settings = app.ksa_settings
    if settings.broker_is_redis:
        return RedisBeatLock(settings.broker_url, settings.beat_lock_ttl)
    return FileBeatLock(settings.home / "beat.lock")


class FleetScheduler(beat.Scheduler):
    def __init__(self, app: Any, *args: Any, fleet: str | None = None, **kwargs: Any) -> None:
        self.fleet_path: Path | None = None
        path = fleet or app.ksa_settings.fleet
        if path:
            self.fleet_path = Path(path)
        self._mtime: float | None = None
        self.lock = make_lock(app)
        self.fleet_error: str | None = None
        super().__init__(app, *args, **kwargs)

    # -- the schedule -----------------------------------------------------------------

    def setup_schedule(self) -> None:
        self.data: dict[str, beat.ScheduleEntry] = {}
        if self.fleet_path is None:
            log.warning("beat: no fleet file (set KSA_FLEET or use ksa run --fleet): "
                        "nothing to schedule")
        self.reload_fleet(force=True)

    @property
    def schedule(self) -> dict[str, beat.ScheduleEntry]:
        return self.data

    def reload_fleet(self, force: bool = False) -> bool:
        """Re-read the fleet file when it changed; keep the old schedule when it is bad."""
        if self.fleet_path is None:
            return False
        try:
            mtime = self.fleet_path.stat().st_mtime_ns
        except OSError as e:
            if self._mtime is not None or force:
                log.error("beat: fleet file %s: %s (keeping %d entries)", self.fleet_path,
                          e.strerror, len(self.data))
            return False
        if not force and mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            fleet = load_fleet(self.fleet_path)
        except FleetError as e:
            self.fleet_error = str(e)
            log.error("beat: %s (keeping %d entries)", e, len(self.data))
            return False
        self.fleet_error = None
        entries = fleet.entries()
        now = self.app.now()
        for name, entry in entries.items():
            if name not in self.data:
                # a new target runs at once, then every interval
                every = entry["schedule"].run_every
                entry["last_run_at"] = now - every
        before = set(self.data)
        self.merge_inplace(entries)
        added, removed = set(self.data) - before, before - set(self.data)
        log.info("beat: fleet %s: %d entries (%d added, %d removed)", self.fleet_path,
                 len(self.data), len(added), len(removed))
        self._heap = None  # rebuild with the new entries' times
        return True

    # -- the loop ---------------------------------------------------------------------

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.lock.acquire():
            return STANDBY_POLL
        self.reload_fleet()
        return float(min(super().tick(*args, **kwargs), self.max_interval))

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.lock.release()

    @property
    def info(self) -> str:
        return f"fleet={self.fleet_path} lock={type(self.lock).__name__}"
