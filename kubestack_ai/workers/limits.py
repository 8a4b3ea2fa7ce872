"""Time limits and the broker settings that follow from them.

Each task's soft/hard limits come from its plugin's (effective) config; the Redis
broker's visibility timeout is kept above the longest time a late-acknowledged message
can stay unacknowledged. Used by the app factory at import and by the worker's start-up
signal once the stored plugin configs are known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery

from kubestack_ai.plugins.logcontext import get_logger

from .catalog import PluginSpec
from .settings import Settings

log = get_logger(__name__)

DEFAULT_SOFT_LIMIT = 30.0
"""The default soft limit: a plugin's ``timeouts.diagnose``."""

VISIBILITY_MARGIN = 10.0
"""Seconds the Redis visibility timeout keeps above the longest time a late-acked message
can stay unacknowledged, so a task still queued or running is never handed to a second
worker."""


DEFAULT_HARD_LIMIT = 40.0
"""The default hard limit (diagnose 30 s + grace 10 s)."""


def visibility_floor(longest_hard_limit: float, prefetch: int) -> float:
    """A reserved message waits behind up to ``prefetch`` others in a child's share of
    the prefetch buffer, each at most the hard limit, then runs up to the hard limit."""
    return longest_hard_limit * (max(prefetch, 1) + 1) + VISIBILITY_MARGIN


def broker_options(settings: Settings, longest_hard_limit: float) -> dict[str, Any]:
    if settings.broker_is_filesystem:
        d = settings.broker_dir
        for sub in ("queue", "processed", "control", "tmp", "quarantine"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        # control: the fanout exchange table (remote control, events); kombu's default
        # is ./control in whatever directory the process was started from. tmp: messages
        # being written; processed: claimed ones being read; quarantine: files that were
        # no message (workers/fsbroker.py). All on one filesystem: renames are atomic.
        return {"data_folder_in": str(d / "queue"), "data_folder_out": str(d / "queue"),
                "processed_folder": str(d / "processed"), "control_folder": str(d / "control"),
                "tmp_folder": str(d / "tmp"), "quarantine_folder": str(d / "quarantine"),
                "store_processed": False, "polling_interval": 0.1}
    floor = visibility_floor(longest_hard_limit, settings.prefetch)
    vis = settings.visibility_timeout
    if vis is not None and vis < floor:
        log.warning("KSA_VISIBILITY_TIMEOUT=%s is below the longest hard time limit x "
                    "(prefetch + 1) + %ss; using %s", vis, VISIBILITY_MARGIN, floor)
    vis = max(vis or 0.0, floor)
    # sweep for messages of dead workers often enough to honour a short timeout
    return {"visibility_timeout": vis,
            "unacked_restore_interval": max(1, min(10, int(vis // 4))),
            "unacked_restore_throttle": 1}


def longest_hard_limit(specs: Mapping[str, PluginSpec]) -> float:
    """Types without a plugin here answer at once; only plugins' limits count. An action
    task counts too: a late-acked diagnosis may wait behind one in the prefetch buffer."""
    return max([max(s.hard_limit, s.action_hard_limit) for s in specs.values()],
               default=DEFAULT_HARD_LIMIT)



def apply_limits(app: Celery, specs: dict[str, PluginSpec]) -> None:
    """Set each task's soft/hard time limits from its plugin's (effective) config, and
    keep the broker's visibility timeout above the longest of them."""
    settings: Settings = app.ksa_settings
    if settings.broker_is_redis:
        opts = broker_options(settings, longest_hard_limit(specs))
        app.conf.broker_transport_options = opts
        app.conf.result_backend_transport_options = opts
    for mtype, spec in specs.items():
        for name, soft, hard in ((f"diagnose.{mtype}", spec.soft_limit, spec.hard_limit),
                                 (f"health.{mtype}", spec.health_soft_limit,
                                  spec.health_hard_limit),
                                 (f"action.{mtype}", spec.action_soft_limit,
                                  spec.action_hard_limit)):
            task = app.tasks.get(name)
            if task is not None:
                task.soft_time_limit = soft
                task.time_limit = hard
