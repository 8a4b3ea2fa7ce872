"""redis-py clients for one target: built from secret references, cached, error-mapped.

Clients are kept across diagnoses, keyed by the target's identity plus a fingerprint of
the resolved credentials: an HMAC with a per-process random key, so the key string
holds no secret and cannot be used to guess one. A changed password gives a new key
(and a fresh client); the least recently used clients are closed past ``MAX_CLIENTS``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..errors import AuthError, ConnectError
from ..logcontext import get_logger
from ..models import MiddlewareTarget
from ..secrets import redact, resolve_secret
from .constants import SELF_CLIENT_NAME
from .infoparse import parse_info

log = get_logger(__name__)

MAX_CLIENTS = 256
_SALT = os.urandom(32)


@dataclass(frozen=True)
class Credentials:
    """Resolved secrets of a target. Lives in memory only; never logged or stored."""

    username: str | None
    password: str | None
    sentinel_username: str | None
    sentinel_password: str | None
    tls_key_password: str | None

    @classmethod
    def of(cls, target: MiddlewareTarget) -> Credentials:
        auth, opts = target.auth, target.options
        return cls(
            username=auth.username if auth else None,
            password=resolve_secret(auth.password) if auth else None,
            sentinel_username=opts.get("sentinel_username"),
            sentinel_password=resolve_secret(opts.get("sentinel_password_ref")),
            tls_key_password=resolve_secret(target.tls.key_password) if target.tls else None,
        )

    def fingerprint(self) -> str:
        raw = "\0".join(str(v) for v in (self.username, self.password, self.sentinel_username,
                                         self.sentinel_password, self.tls_key_password))
        return hmac.new(_SALT, raw.encode(), hashlib.sha256).hexdigest()[:16]

    def redact(self, text: str) -> str:
        return redact(text, self.password, self.sentinel_password, self.tls_key_password)


def client_kwargs(target: MiddlewareTarget, creds: Credentials, *, sentinel: bool,
                  socket_timeout: float, connect_timeout: float) -> dict[str, Any]:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kw: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        # no silent retries with backoff: a diagnosis must say "down" within its deadline
        "retry": Retry(NoBackoff(), 0),
        "client_name": SELF_CLIENT_NAME,
        # CLIENT SETNAME is cosmetic (it keeps our connection out of CLIENT LIST): a user
        # not allowed +client|setname must still be diagnosed
        "redis_connect_func": _on_connect_name_optional,
        "db": 0 if sentinel else int(target.options.get("db", 0)),
        **quiet_handshake(),
    }
    if sentinel:
        kw["username"], kw["password"] = creds.sentinel_username, creds.sentinel_password
    else:
        kw["username"], kw["password"] = creds.username, creds.password
    tls = target.tls
    if tls is not None and tls.enabled:
        kw.update(ssl=True, ssl_ca_certs=tls.ca_file, ssl_certfile=tls.cert_file,
                  ssl_keyfile=tls.key_file, ssl_password=creds.tls_key_password,
                  ssl_cert_reqs="required" if tls.verify else "none",
                  # redis-py checks the certificate against the host it dials; it cannot
                  # check another name, so with server_hostname only the chain is verified
                  ssl_check_hostname=bool(tls.verify and tls.server_hostname is None))
    return kw


def quiet_handshake() -> dict[str, Any]:
    """No CLIENT SETINFO and no maintenance-notifications handshake on connect: a Redis
    before 7.2 answers both with ERR, and every connection of ours would then count in
    the server's INFO errorstats (``errorstat_ERR``), the very counter the diagnosis
    judges. redis-py 5-7 knows ``lib_name``, 7.1+ ``driver_info`` and the config."""
    import inspect

    import redis

    params = inspect.signature(redis.Redis.__init__).parameters
    kw: dict[str, Any] = {}
    if "driver_info" in params:
        kw["driver_info"] = None
    elif "lib_name" in params:
        kw["lib_name"] = None
    if "maint_notifications_config" in params:
        from redis.maint_notifications import MaintNotificationsConfig

        kw["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    return kw


def _on_connect_name_optional(conn: Any) -> None:
    """redis-py's on_connect (AUTH, HELLO, SELECT), then CLIENT SETNAME if the user may."""
    import redis.exceptions as rx

    name, conn.client_name = conn.client_name, None
    try:
        conn.on_connect()
    finally:
        conn.client_name = name
    if name:
        try:
            conn.send_command("CLIENT", "SETNAME", name)
            conn.read_response()
        except rx.ResponseError as e:  # NOPERM (no +client|setname) or a renamed command
            log.debug("CLIENT SETNAME refused, connection left unnamed: %s", e)


def connection_key(target: MiddlewareTarget, creds: Credentials) -> str:
    """What makes two targets' connections interchangeable: mode, endpoints, credentials
    (a fingerprint, never the secret), TLS and options (db, master_name...). The target's
    name is not in it: a thousand names for one server share its clients."""
    return (f"{target.mode.value}|{','.join(target.endpoints)}|{creds.fingerprint()}|"
            f"{target.tls!r}|{sorted(target.options.items())!r}")


class ClientCache:
    """Thread-safe LRU of redis.Redis clients, one per (target, credentials, node)."""

    def __init__(self) -> None:
        self._clients: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, host: str, port: int, kwargs: dict[str, Any]) -> Any:
        with self._lock:
            client = self._clients.get(key)
            if client is not None:
                self._clients.move_to_end(key)
                return client
        import redis

        client = redis.Redis(host=host, port=port, **kwargs)
        client.set_response_callback("INFO", parse_info)  # redis-py's result, faster
        with self._lock:
            self._clients[key] = client
            while len(self._clients) > MAX_CLIENTS:
                _, old = self._clients.popitem(last=False)
                old.close()
        return client

    def drop(self, key: str) -> None:
        """Forget a client (the next get makes a fresh one). Not closed here: another
        thread may still be reading on it (servers are asked concurrently, and a hung
        one is left to its own time-out); redis-py closes it when the last user lets go."""
        with self._lock:
            self._clients.pop(key, None)

    def close_all(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), OrderedDict()
        for c in clients:
            c.close()

    def __len__(self) -> int:
        return len(self._clients)


def map_error(exc: BaseException, where: str, creds: Credentials,
              sentinel: bool = False, timeout: float | None = None) -> ConnectError:
    """A redis-py error as ConnectError or AuthError, with every secret removed. With the
    socket ``timeout``, a time-out says the server accepted but did not answer in time."""
    import redis.exceptions as rx

    text = creds.redact(f"{type(exc).__name__}: {exc}")
    msg = str(exc)
    auth_words = ("WRONGPASS", "NOAUTH", "invalid password", "invalid username",
                  "AUTH <password> called without any password")
    if isinstance(exc, rx.AuthenticationError) or any(w in msg for w in auth_words):
        user, password = ((creds.sentinel_username, creds.sentinel_password) if sentinel
                          else (creds.username, creds.password))
        who = f"user {user!r}" if user else "the default user"
        hint = ("no password was given" if password is None
                else "the referenced password was refused")
        return AuthError(f"redis {where} refused authentication for {who} ({hint}): {text}")
    # redis-py strips the NOPERM prefix from the message: the exception type says it
    if isinstance(exc, rx.NoPermissionError) or "NOPERM" in msg:
        return AuthError(f"redis {where}: the user lacks a permission (grant it with ACL "
                         f"SETUSER): {text}")
    if "max number of clients reached" in msg:
        return ConnectError(f"redis {where} refuses new connections: {text}",
                            title="Max clients reached", kind="maxclients_reached",
                            hint=MAXCLIENTS_HINT)
    if isinstance(exc, rx.InvalidResponse) or msg.startswith("Protocol error"):
        return not_redis(where, f"its reply is not the Redis protocol ({text})")
    if timeout and isinstance(exc, (rx.TimeoutError, TimeoutError)):
        return ConnectError(f"redis {where} did not answer within {timeout:g} s (hung, "
                            f"overloaded or cut off): {text}",
                            title=f"No answer within {timeout:g} s")
    return ConnectError(f"redis {where} unreachable: {text}")


MAXCLIENTS_HINT = ("The server refuses every new connection: maxclients is reached. Find "
                   "the clients holding connections (CLIENT LIST from an open session, or "
                   "ss -tn on the server's host), cap their pools, and raise maxclients "
                   "(CONFIG SET maxclients, and the process's file limit).")
NOT_REDIS_HINT = ("Another service answers on this port (MySQL, HTTP, SSH...): check the "
                  "target's host and port (Redis listens on 6379 by default), and --tls if "
                  "the server expects TLS.")


def not_redis(where: str, why: str) -> ConnectError:
    return ConnectError(f"redis {where}: not a Redis server: {why}",
                        title="Not a Redis server", kind="not_redis", hint=NOT_REDIS_HINT)


def speaks_first(host: str, port: int, wait: float = 0.3) -> bytes:
    """The bytes a server sends before it is asked anything (at most 64, within ``wait``
    seconds). Redis never speaks first; MySQL's greeting, an SSH or SMTP banner do. Read
    only after a PING timed out: a banner without a line end reads as an endless reply."""
    try:
        with socket.create_connection((host, port), timeout=wait) as s:
            s.settimeout(wait)
            return s.recv(64)
    except OSError:  # nothing said in time, or gone: no banner
        return b""


def is_timeout(exc: BaseException) -> bool:
    import redis.exceptions as rx

    return isinstance(exc, (rx.TimeoutError, TimeoutError))


def is_connection_error(exc: BaseException) -> bool:
    import redis.exceptions as rx

    return isinstance(exc, (rx.ConnectionError, rx.TimeoutError, OSError))
