"""JSON POSTs, one queue and one thread per receiver: retried with back-off, bounded,
never raising.

A receiver that hangs, or answers a byte at a time, costs its own thread, never another
receiver's: Alertmanager keeps getting its resends while a webhook is stuck. Every send
has a total deadline (connect, redirects and the whole answer), not a time-out per read:
a socket still open at the deadline is shut down from a timer. Each queue is bounded:
past ``MAX_QUEUED`` the oldest message is dropped (and logged), so an unreachable
receiver cannot grow memory without end.

A POST is re-sent to the new place on 307 and 308 only (credentials only to the same
origin); any other redirect is a failure, logged, never counted as sent (urllib would
have followed it as a GET). Logs name a receiver by scheme and host (``Receiver.shown``):
no credentials, no path.
"""

from __future__ import annotations

import collections
import functools
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from kubestack_ai.plugins.errors import SecretError
from kubestack_ai.plugins.secrets import redact

from .config import Receiver, origin

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
MAX_REDIRECTS = 3
MAX_ANSWER = 65_536
"""Bytes of a receiver's answer read (and ignored): enough to end the exchange."""


@dataclass(frozen=True)
class Message:
    body: Any
    what: str
    retries: int


class SendFailed(Exception):
    """One attempt failed; ``final`` when trying again cannot help (a redirect we do not
    follow, a secret reference that cannot be resolved)."""

    def __init__(self, reason: str, final: bool = False) -> None:
        super().__init__(reason)
        self.final = final


class Sender:
    """Routes each message to its receiver's channel (made on first use)."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._channels: dict[Receiver, _Channel] = {}
        self._lock = threading.Lock()

    def post(self, receiver: Receiver | str, body: Any, what: str, retries: int = 0) -> None:
        if isinstance(receiver, str):
            receiver = Receiver(url=receiver)
        with self._lock:
            ch = self._channels.get(receiver)
            if ch is None:
                ch = self._channels[receiver] = _Channel(receiver, self.timeout)
        ch.put(Message(body, what, retries))

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self._list())

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self._list())

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued was sent or given up on (tests, shutdown)."""
        end = time.monotonic() + timeout
        return all([c.flush(end) for c in self._list()])

    def close(self) -> None:
        """Stop every channel; a send in flight is cut, not waited for."""
        channels = self._list()
        for c in channels:
            c.stop()
        end = time.monotonic() + 5
        for c in channels:
            c.thread.join(max(0.0, end - time.monotonic()))

    def _list(self) -> list[_Channel]:
        with self._lock:
            return list(self._channels.values())


class _Channel:
    """One receiver's queue and the thread that sends it."""

    def __init__(self, receiver: Receiver, timeout: float) -> None:
        self.receiver = receiver
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._queue: collections.deque[Message] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stopped = False
        self._conn: http.client.HTTPConnection | None = None
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"ksa-notify {receiver.shown}")
        self.thread.start()

    def put(self, msg: Message) -> None:
        with self._cond:
            if len(self._queue) >= MAX_QUEUED:
                dropped = self._queue.popleft()
                log.error("notify: queue full, dropped %s to %s", dropped.what,
                          self.receiver.shown)
            self._queue.append(msg)
            self._cond.notify_all()

    def flush(self, end: float) -> bool:
        with self._cond:
            while self._queue or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            conn = self._conn
        if conn is not None:
            _cut(conn)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                msg = self._queue.popleft()
                self._busy = True
            try:
                self._send(msg)
            except Exception:  # never let the thread die: its receiver would go silent
                self.failed += 1
                log.exception("notify: %s to %s failed", msg.what, self.receiver.shown)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send(self, msg: Message) -> None:
        data = json.dumps(msg.body, default=str).encode()
        for attempt in range(msg.retries + 1):
            try:
                self._attempt(data)
                self.sent += 1
                log.debug("notify: %s sent to %s", msg.what, self.receiver.shown)
                return
            except SendFailed as e:
                reason, final = str(e), e.final
            if attempt < msg.retries and not final:
                delay = 2 ** attempt
                log.info("notify: %s to %s failed (%s), retrying in %ds", msg.what,
                         self.receiver.shown, reason, delay)
                with self._cond:
                    if self._cond.wait_for(lambda: self._stopped, delay):
                        return
                continue
            self.failed += 1
            log.warning("notify: %s to %s failed after %d attempts: %s", msg.what,
                        self.receiver.shown, attempt + 1, reason)
            return

    def _attempt(self, data: bytes) -> None:
        """One send, redirects included, within ``timeout`` in all; raises SendFailed."""
        deadline = time.monotonic() + self.timeout
        try:
            auth = self.receiver.auth_header()
        except SecretError as e:
            raise SendFailed(str(e), final=True) from None
        headers = {"Content-Type": "application/json", "User-Agent": "kubestack-ai-notify"}
        url = self.receiver.url
        for _ in range(MAX_REDIRECTS + 1):
            same = origin(url) == self.receiver.shown
            sent = {**headers, "Authorization": auth} if auth and same else headers
            try:
                status, location = self._post(url, data, sent, deadline)
            except (OSError, http.client.HTTPException) as e:
                if time.monotonic() >= deadline:
                    raise SendFailed(f"no complete answer within {self.timeout:g} s") from None
                raise SendFailed(redact(_reason(e), auth)) from None
            if 200 <= status < 300:
                return
            if status in (307, 308) and location:
                url = urljoin(url, location)
                continue
            if 300 <= status < 400:
                to = origin(urljoin(url, location)) if location else "nowhere"
                raise SendFailed(f"HTTP {status} redirect to {to} not followed (a POST is "
                                 "re-sent on 307 and 308 only)", final=True)
            raise SendFailed(f"HTTP {status}")
        raise SendFailed(f"more than {MAX_REDIRECTS} redirects", final=True)

    def _post(self, url: str, data: bytes, headers: dict[str, str],
              deadline: float) -> tuple[int, str | None]:
        parts = urlsplit(url)
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=left,
                                               context=_tls())
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=left)
        # the socket's time-out is per read: a receiver trickling bytes never reaches it,
        # so the whole exchange is cut at the deadline
        timer = threading.Timer(left, _cut, (conn,))
        timer.daemon = True
        with self._cond:
            self._conn = conn
        timer.start()
        try:
            path = parts.path or "/"
            conn.request("POST", path + (f"?{parts.query}" if parts.query else ""),
                         body=data, headers=headers)
            resp = conn.getresponse()
            resp.read(MAX_ANSWER)
            return resp.status, resp.getheader("Location")
        finally:
            timer.cancel()
            with self._cond:
                self._conn = None
            conn.close()


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's CA bundle, loaded once (not per send)."""
    return ssl.create_default_context()


def _cut(conn: http.client.HTTPConnection) -> None:
    """Shut the connection's socket down from another thread: a blocked read returns.
    The plain socket's shutdown, under TLS too (the TLS object is the reader's)."""
    sock = conn.sock
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def _reason(e: Exception) -> str:
    if isinstance(e, http.client.HTTPException):
        return f"bad answer: {type(e).__name__}"
    return str(getattr(e, "strerror", None) or e)
