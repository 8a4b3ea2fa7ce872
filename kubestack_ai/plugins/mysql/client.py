"""The PyMySQL connection: opening it (auth from secret references, TLS), and running a
batch of statements in one round trip, each statement's failure kept apart.

PyMySQL is imported here, inside functions, never at module import: listing plugins
must not import drivers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..deadline import Deadline
from ..errors import AuthError, ConnectError
from ..logcontext import get_logger
from ..models import MiddlewareTarget, split_endpoint
from ..secrets import redact, resolve_secret
from ..session import Abandonable
from .constants import AUTH_ERRORS, MISSING_ERRORS, PRIVILEGE_ERRORS

if TYPE_CHECKING:
    import ssl

log = get_logger(__name__)


@dataclass(frozen=True)
class QueryFailure:
    """A statement the server refused: ``kind`` is privilege, missing or error."""

    errno: int
    message: str
    kind: str

    def __str__(self) -> str:
        return f"({self.errno}) {self.message}"


def _server_errno(exc: BaseException) -> int | None:
    """The server's error number, or None for a client-side (connection) failure."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        errno = args[0]
        if errno < 2000 or errno >= 3000:
            return errno
    return None


def failure_of(exc: BaseException) -> QueryFailure | None:
    errno = _server_errno(exc)
    if errno is None:
        return None
    msg = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    kind = ("privilege" if errno in PRIVILEGE_ERRORS else
            "missing" if errno in MISSING_ERRORS else "error")
    return QueryFailure(errno, msg, kind)


@functools.cache
def _sni_context() -> type[ssl.SSLContext]:
    """The SSLContext class, defined when a TLS context is first made (``ssl`` is not
    imported by a plugin that is only listed or diagnosed without TLS)."""
    import ssl

    class _SNIContext(ssl.SSLContext):
        """An SSLContext that presents (and checks) a fixed server name: PyMySQL passes
        the host it dialled, which is wrong when connecting by IP to a named certificate."""

        ksa_server_hostname: str | None = None

        def wrap_socket(self, sock: Any, *args: Any, **kw: Any) -> Any:
            if self.ksa_server_hostname:
                kw["server_hostname"] = self.ksa_server_hostname
            return super().wrap_socket(sock, *args, **kw)

    return _SNIContext


def tls_context(target: MiddlewareTarget) -> ssl.SSLContext | None:
    tls = target.tls
    if tls is None or not tls.enabled:
        return None
    import ssl

    ctx = _sni_context()(ssl.PROTOCOL_TLS_CLIENT)
    ctx.ksa_server_hostname = tls.server_hostname  # type: ignore[attr-defined]
    if tls.verify:
        if tls.ca_file:
            ctx.load_verify_locations(cafile=tls.ca_file)
        else:
            ctx.load_default_certs()
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file, password=resolve_secret(tls.key_password))
    return ctx


GREETING_WAIT = 1.5
"""Seconds a server has to send its greeting: MySQL greets every new connection at once;
a port that stays silent (Redis, Kafka, HTTP) is not a MySQL server (or a hung one), and
is said so now rather than at the end of the read time-out."""
NOT_MYSQL_HINT = ("Another service answers on this port (Redis, Kafka, HTTP...), or a MySQL "
                  "server that hangs before greeting: check the target's host and port "
                  "(MySQL listens on 3306 by default).")


def open_connection(target: MiddlewareTarget, deadline: Deadline) -> Any:
    """Connect to the first endpoint that answers. Raises AuthError / ConnectError with
    messages that never hold the password."""
    import pymysql
    from pymysql.constants import CLIENT

    auth = target.auth
    user = auth.username if auth and auth.username else target.options.get("user", "root")
    password = resolve_secret(auth.password) if auth else None
    try:
        ctx = tls_context(target)
    except OSError as e:  # ssl.SSLError included
        raise ConnectError(f"{target.name}: TLS setup failed: {e}") from None
    errors: list[str] = []
    for ep in target.endpoints:
        host, port = split_endpoint(ep)
        timeout = max(0.05, deadline.remaining(cap=10.0))
        kwargs: dict[str, Any] = dict(
            host=host, port=port, user=user, password=password or "",
            database=target.options.get("database"), connect_timeout=timeout,
            read_timeout=min(timeout, GREETING_WAIT), write_timeout=timeout, autocommit=True,
            charset="utf8mb4",
            client_flag=CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS,
            program_name="kubestack-ai",
        )
        if ctx is not None:
            kwargs["ssl"] = ctx
        try:
            conn = pymysql.connect(**kwargs)
            conn._read_timeout = timeout  # greeted: statements get the whole time-out
            return conn
        except pymysql.err.MySQLError as e:
            errno = e.args[0] if e.args and isinstance(e.args[0], int) else 0
            msg = redact(str(e.args[1]) if len(e.args) > 1 else str(e), password)
            if errno in AUTH_ERRORS:
                raise AuthError(f"{ep}: the server refused user {user!r}: ({errno}) {msg}") from None
            if errno == 2013 and "timed out" in msg and len(target.endpoints) == 1:
                raise ConnectError(
                    f"{ep}: not a MySQL server: it accepted the connection but sent no MySQL "
                    f"greeting within {GREETING_WAIT:g} s", title="Not a MySQL server",
                    kind="not_mysql", hint=NOT_MYSQL_HINT) from None
            errors.append(f"{ep}: ({errno}) {msg}")
        except OSError as e:  # ssl.SSLError included
            errors.append(f"{ep}: {redact(str(e), password)}")
    raise ConnectError("; ".join(errors))


class Session(Abandonable):
    """One open connection and what we learnt about it (abandoned when busy past a
    deadline: plugins/session.py)."""

    def __init__(self, conn: Any, target: MiddlewareTarget) -> None:
        super().__init__()
        self.conn = conn
        self.target = target
        self.server: Any = None  # server.Server, filled by the first diagnosis
        self.known_vars: dict[str, Any] = {}  # the variables the last diagnosis read

    def set_timeout(self, deadline: Deadline, cap: float = 30.0) -> None:
        # PyMySQL re-applies _read_timeout before each packet read: sizing it from the
        # deadline bounds every statement without reconnecting.
        t = max(0.05, deadline.remaining(cap=cap))
        self.conn._read_timeout = t
        self.conn._write_timeout = t

    def alive(self, deadline: Deadline) -> bool:
        try:
            self.set_timeout(deadline, cap=2.0)
            self.conn.ping(reconnect=False)
            return True
        except Exception:  # any failure means: open a new connection
            return False

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # already closed or broken: nothing left to release
            log.debug("close of %s failed", self.target.name, exc_info=True)
            try:
                self.conn._force_close()
            except Exception:
                log.debug("force close of %s failed", self.target.name, exc_info=True)

    def batch(self, queries: list[tuple[str, str]], deadline: Deadline
              ) -> dict[str, list[dict[str, Any]] | QueryFailure]:
        """Run ``(key, sql)`` statements in as few round trips as possible.

        The server stops a multi-statement at the first error; the statement that failed
        is recorded and the rest are sent again as a new batch.
        """
        from pymysql.cursors import DictCursor

        out: dict[str, list[dict[str, Any]] | QueryFailure] = {}
        pending = list(queries)
        while pending:
            deadline.check("mysql batch")
            self.set_timeout(deadline)
            cur = self.conn.cursor(DictCursor)
            done = 0
            try:
                try:
                    cur.execute(";\n".join(sql for _, sql in pending))
                except Exception as e:
                    fail = failure_of(e)
                    if fail is None:
                        raise
                    out[pending[0][0]] = fail
                    done = 1
                else:
                    while True:
                        out[pending[done][0]] = list(cur.fetchall())
                        done += 1
                        if done >= len(pending):
                            break
                        try:
                            more = cur.nextset()
                        except Exception as e:
                            fail = failure_of(e)
                            if fail is None:
                                raise
                            out[pending[done][0]] = fail
                            done += 1
                            break
                        if not more:
                            break
            finally:
                cur.close()
            pending = pending[done:]
        return out

    def execute(self, sql: str, deadline: Deadline) -> int:
        self.set_timeout(deadline)
        with self.conn.cursor() as cur:
            return int(cur.execute(sql))
