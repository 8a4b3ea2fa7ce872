"""JSON POSTs from a thread of their own: retried with back-off, bounded, never raising.

A receiver that is down costs this thread its retries; whoever queued the message has
already moved on. The queue is bounded: past ``MAX_QUEUED`` the oldest message is
dropped (and logged), so an unreachable receiver cannot grow memory without end.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from kubestack_ai.plugins.secrets import redact

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000


@dataclass(frozen=True)
class Message:
    url: str
    body: Any
    what: str
    retries: int


class Sender:
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._queue: collections.deque[Message] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self.sent = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="ksa-notify-sender", daemon=True)
        self._thread.start()

    def post(self, url: str, body: Any, what: str, retries: int = 0) -> None:
        with self._cond:
            if len(self._queue) >= MAX_QUEUED:
                dropped = self._queue.popleft()
                log.error("notify: queue full, dropped %s to %s", dropped.what, _host(dropped.url))
            self._queue.append(Message(url, body, what, retries))
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued was sent or given up on (tests, shutdown)."""
        end = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                msg = self._queue.popleft()
                self._busy = True
            try:
                self._send(msg)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send(self, msg: Message) -> None:
        data = json.dumps(msg.body, default=str).encode()
        for attempt in range(msg.retries + 1):
            req = urllib.request.Request(msg.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "kubestack-ai-notify"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    resp.read()
                self.sent += 1
                log.debug("notify: %s sent to %s", msg.what, _host(msg.url))
                return
            except (OSError, urllib.error.HTTPError) as e:
                reason = _reason(e, msg.url)
                if attempt < msg.retries:
                    delay = 2 ** attempt
                    log.info("notify: %s to %s failed (%s), retrying in %ds", msg.what,
                             _host(msg.url), reason, delay)
                    with self._cond:
                        if self._cond.wait_for(lambda: self._stop, delay):
                            return
                    continue
                self.failed += 1
                log.warning("notify: %s to %s failed after %d attempts: %s", msg.what,
                            _host(msg.url), attempt + 1, reason)


def _host(url: str) -> str:
    """The receiver as logs name it: scheme and host, never a path that may hold a token
    (Slack-style webhook URLs carry their secret in the path)."""
    parts = url.split("/")
    return "/".join(parts[:3]) if len(parts) >= 3 else "(receiver)"


def _reason(e: Exception, url: str) -> str:
    if isinstance(e, urllib.error.HTTPError):
        e.close()
        return f"HTTP {e.code}"
    return redact(str(getattr(e, "reason", e)), url)
