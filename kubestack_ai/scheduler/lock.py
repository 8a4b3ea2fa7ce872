"""Only one beat schedules: a lock each beat must hold before it queues anything.

- Redis broker: a Redis key with a TTL, renewed on every tick; a beat that dies loses
  it after the TTL and a standby beat takes over.
- Any other broker (filesystem:// on one machine): an exclusive flock on a file under
  $KSA_HOME, released by the kernel when the holder exits.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger(__name__)

LOCK_KEY = "ksa:beat:lock"


class BeatLock(Protocol):
    def acquire(self) -> bool:
        """Take or renew the lock; False when another beat holds it."""

    def release(self) -> None: ...


class RedisBeatLock:
    def __init__(self, url: str, ttl: float, key: str = LOCK_KEY) -> None:
        import redis  # noqa: PLC0415

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.key = key
        self.ttl_ms = int(ttl * 1000)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held = False
        # set-if-ours-or-free, atomically: renew our lock, or take a free one
        self._script = self.client.register_script(
            "local v = redis.call('get', KEYS[1]) "
            "if v == false or v == ARGV[1] then "
            "  redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) return 1 end "
            "return 0")

    def acquire(self) -> bool:
        try:
            ok = bool(self._script(keys=[self.key], args=[self.token, self.ttl_ms]))
        except Exception as e:  # broker down: do not schedule, say why, try again
            log.warning("beat lock: redis unreachable: %s", type(e).__name__)
            ok = False
        if ok != self.held:
            log.info("beat lock %s by %s", "acquired" if ok else "held elsewhere", self.token)
        self.held = ok
        return ok

    def holder(self) -> str | None:
        v = self.client.get(self.key)
        if v is None:
            return None
        return v.decode() if isinstance(v, bytes) else str(v)

    def release(self) -> None:
        if not self.held:
            return
        try:
            self.client.eval("if redis.call('get', KEYS[1]) == ARGV[1] then "
                             "return redis.call('del', KEYS[1]) end return 0",
                             1, self.key, self.token)
        except Exception as e:  # the TTL frees it anyway
            log.warning("beat lock release failed: %s", type(e).__name__)
        self.held = False
        self.client.close()


class FileBeatLock:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fh: IO[str] | None = None

    def acquire(self) -> bool:
        import fcntl  # noqa: PLC0415

        if self.fh is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held while we schedule)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{socket.gethostname()}:{os.getpid()}\n")
        fh.flush()
        self.fh = fh
        log.info("beat lock acquired: %s", self.path)
        return True

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
