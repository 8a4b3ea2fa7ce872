"""scheduler: the fleet file becomes Celery beat's schedule (FleetScheduler), with one
beat scheduling at a time (a lock)."""

from __future__ import annotations

from .fleet import Fleet, FleetError, FleetTarget, load_fleet, parse_fleet

__all__ = ["Fleet", "FleetError", "FleetTarget", "load_fleet", "parse_fleet"]
