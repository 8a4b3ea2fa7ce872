"""Worker and beat settings, read once from the environment into a typed object.

    KSA_BROKER_URL          broker (default: filesystem:// under $KSA_HOME/broker, no server)
    KSA_RESULT_BACKEND      Celery result backend (default: the Redis broker's URL for
                            redis://, else file:// under $KSA_HOME/results)
    KSA_DATABASE_URL        storage (read by storage.Store; default SQLite in $KSA_HOME)
    KSA_HOME                state directory (default ~/.ksa)
    KSA_FLEET               fleet file beat schedules from
    KSA_PLUGIN_MODULES      extra modules whose import registers plugins (comma separated)
    KSA_CACHE_TTL           seconds a fresh result is served from the cache (default 60)
    KSA_VISIBILITY_TIMEOUT  Redis broker visibility timeout; raised to above the longest
                            hard time limit when lower
    KSA_PREFETCH            worker_prefetch_multiplier (default 4)
    KSA_BEAT_LOCK_TTL       seconds the beat lock lives without renewal (default 30)
    KSA_STORAGE_TIMEOUT     seconds one storage call may take in a worker (default 5; a
                            task's calls are held to a third of its soft limit when less)
    KSA_HISTORY_DAYS        days of run history and audit log kept (default 14; 0: no age
                            limit); older runs survive as daily rollups
    KSA_HISTORY_PER_TARGET  runs (and audit records) kept per target (default: no limit)
    KSA_RETENTION_INTERVAL  seconds between the pruning runs beat schedules (default 3600)
    KSA_ADHOC_DAYS          days a one-off target (run by hand, not in the fleet) stays in
                            the view after its last run (default 7; 0: for good)
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """``redis://:secret@host/1`` -> ``redis://:***@host/1``: URLs are logged this way."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


@dataclass(frozen=True)
class Settings:
    home: Path
    broker_url: str
    result_backend: str
    fleet: str | None
    plugin_modules: tuple[str, ...]
    cache_ttl: float
    visibility_timeout: float | None
    prefetch: int
    beat_lock_ttl: float
    bench_tasks: bool = False
    """KSA_BENCH_TASKS=1: also register ksa.noop and ksa.noop_limited, the floors
    bench/celery_fleet.py measures against (never in production)."""
    database_url: str | None = None
    storage_timeout: float = 5.0
    history_days: float = 14.0
    history_per_target: int | None = None
    retention_interval: float = 3600.0
    adhoc_days: float = 7.0
    environ: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def broker_is_filesystem(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def broker_is_redis(self) -> bool:
        return self.broker_url.startswith(("redis://", "rediss://"))

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"

    @property
    def spool_dir(self) -> Path:
        """Runs kept while storage is unreachable (storage/spool.py)."""
        return self.home / "spool"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        home = Path(env.get("KSA_HOME") or Path.home() / ".ksa").expanduser()
        # a host in the URL, though the transport ignores it: without one kombu warns "No
        # hostname was supplied" each time it copies the connection
        broker = env.get("KSA_BROKER_URL") or "filesystem://localhost/"
        backend = env.get("KSA_RESULT_BACKEND") or (
            broker if broker.startswith(("redis://", "rediss://"))
            else f"file://{home / 'results'}")
        vis = env.get("KSA_VISIBILITY_TIMEOUT")
        per = env.get("KSA_HISTORY_PER_TARGET")
        mods = tuple(m.strip() for m in env.get("KSA_PLUGIN_MODULES", "").split(",") if m.strip())
        return cls(home=home, broker_url=broker, result_backend=backend,
                   fleet=env.get("KSA_FLEET") or None, plugin_modules=mods,
                   cache_ttl=float(env.get("KSA_CACHE_TTL", "60")),
                   visibility_timeout=float(vis) if vis else None,
                   prefetch=int(env.get("KSA_PREFETCH", "4")),
                   beat_lock_ttl=float(env.get("KSA_BEAT_LOCK_TTL", "30")),
                   bench_tasks=env.get("KSA_BENCH_TASKS", "") == "1",
                   database_url=env.get("KSA_DATABASE_URL") or None,
                   storage_timeout=float(env.get("KSA_STORAGE_TIMEOUT", "5")),
                   history_days=float(env.get("KSA_HISTORY_DAYS") or "14"),
                   history_per_target=int(per) if per else None,
                   retention_interval=float(env.get("KSA_RETENTION_INTERVAL") or "3600"),
                   adhoc_days=float(env.get("KSA_ADHOC_DAYS") or "7"),
                   environ=env)

    def retention(self) -> dict[str, Any]:
        """``Store.prune`` keyword arguments for these settings."""
        return {"older_than": dt.timedelta(days=self.history_days) if self.history_days > 0
                else None,
                "per_target": self.history_per_target or None}

    def adhoc_age(self) -> dt.timedelta | None:
        """How long a one-off target stays in the view after its last run (None: for good)."""
        return dt.timedelta(days=self.adhoc_days) if self.adhoc_days > 0 else None
