"""The psycopg 3 connection: opening it (auth from secret references, a ``.pgpass``
read through a reference, TLS with ``sslmode`` and client certificates), and running a
batch of statements in one round trip (pipeline mode), each statement's failure kept
apart.

psycopg is imported here, inside functions, never at module import: listing plugins
must not import drivers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..deadline import Deadline
from ..errors import AuthError, ConnectError
from ..logcontext import get_logger
from ..models import MiddlewareTarget, split_endpoint
from ..secrets import redact, resolve_secret
from ..session import Abandonable
from .constants import AUTH_STATES, MISSING_STATES, PRIVILEGE_STATES

log = get_logger(__name__)

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class QueryFailure:
    """A statement the server refused: ``kind`` is privilege, missing or error."""

    sqlstate: str
    message: str
    kind: str

    def __str__(self) -> str:
        return f"({self.sqlstate}) {self.message}"


def failure_of(exc: BaseException) -> QueryFailure | None:
    """The server's refusal of one statement; None for a connection failure."""
    state = getattr(exc, "sqlstate", None)
    if not state:
        return None
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    kind = ("privilege" if state in PRIVILEGE_STATES else
            "missing" if state in MISSING_STATES else "error")
    return QueryFailure(state, msg, kind)


def quote_ident(name: str) -> str:
    """An identifier as an operator types it in a statement: always double-quoted."""
    return '"' + str(name).replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def pgpass_password(text: str, host: str, port: int, dbname: str, user: str) -> str | None:
    """The password of the first matching ``.pgpass`` line (libpq's rules: fields
    host:port:database:username:password, ``*`` matches anything, ``\\`` escapes)."""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields: list[str] = []
        cur, esc = "", False
        for ch in line:
            if esc:
                cur, esc = cur + ch, False
            elif ch == "\\":
                esc = True
            elif ch == ":" and len(fields) < 4:
                fields.append(cur)
                cur = ""
            else:
                cur += ch
        fields.append(cur)
        if len(fields) != 5:
            continue
        want = (host, str(port), dbname, user)
        if all(f == "*" or f == w for f, w in zip(fields[:4], want, strict=True)):
            return fields[4]
    return None


def conninfo(target: MiddlewareTarget, endpoint: str, deadline: Deadline,
             dbname: str | None = None) -> tuple[dict[str, Any], str | None]:
    """psycopg connect keywords for ``endpoint`` (the target's database, or ``dbname``)
    and the password (to redact)."""
    auth = target.auth
    opts = target.options
    user = auth.username if auth and auth.username else str(opts.get("user", "postgres"))
    dbname = dbname or str(opts.get("database", "postgres"))
    host, port = split_endpoint(endpoint)
    password = resolve_secret(auth.password) if auth else None
    if password is None and opts.get("passfile"):
        # the .pgpass is itself a secret reference: it resolves only where allowed
        text = resolve_secret(str(opts["passfile"])) or ""
        password = pgpass_password(text, host, port, dbname, user)
    kw: dict[str, Any] = {
        "host": host, "port": port, "user": user, "dbname": dbname,
        "connect_timeout": max(1, int(deadline.remaining(cap=10.0))),
        "application_name": "kubestack-ai", "autocommit": True,
        # libpq must not read the operator's own ~/.pgpass or service file behind our back
        "passfile": "/dev/null/none",  # a path that cannot exist: libpq skips it quietly
    }
    if password is not None:
        kw["password"] = password
    tls = target.tls
    sslmode = opts.get("sslmode")
    if tls is not None and tls.enabled:
        kw["sslmode"] = sslmode or ("verify-full" if tls.verify else "require")
        if tls.ca_file:
            kw["sslrootcert"] = tls.ca_file
        elif tls.verify:
            kw["sslrootcert"] = "system"
        if tls.cert_file:
            kw["sslcert"] = tls.cert_file
            kw["sslkey"] = tls.key_file or tls.cert_file
            key_password = resolve_secret(tls.key_password)
            if key_password is not None:
                kw["sslpassword"] = key_password
        if tls.server_hostname:
            # verify-full checks the name given in host; dial the address we were given
            kw["hostaddr"], kw["host"] = host, tls.server_hostname
    else:
        kw["sslmode"] = sslmode or "prefer"
    return kw, password


def open_connection(target: MiddlewareTarget, endpoint: str, deadline: Deadline,
                    dbname: str | None = None) -> Any:
    """Connect to ``endpoint``. Raises AuthError / ConnectError with messages that never
    hold the password."""
    import psycopg

    kw, password = conninfo(target, endpoint, deadline, dbname)
    try:
        return psycopg.connect(**kw)
    except psycopg.OperationalError as e:
        msg = redact(" ".join(str(e).split()), password, kw.get("sslpassword"))
        state = getattr(e, "sqlstate", None) or ""
        if state in AUTH_STATES or "password authentication failed" in msg:
            raise AuthError(f"{endpoint}: the server refused role {kw['user']!r}: {msg}") from None
        if "too many connections for role" in msg or "too many connections for database" in msg:
            what = "role" if "for role" in msg else "database"
            name = kw["user"] if what == "role" else kw["dbname"]
            raise ConnectError(f"{endpoint}: {msg}", f"Connections refused: the {what}'s "
                               "connection limit is reached", kind="too_many_clients",
                               hint=f"Find who holds them (SELECT pid, usename, application_name, "
                               "client_addr, state FROM pg_stat_activity WHERE "
                               f"{'usename' if what == 'role' else 'datname'} = "
                               f"{quote_literal(name)};) or raise the limit: ALTER "
                               f"{what.upper()} {quote_ident(name)} CONNECTION LIMIT <n>;") from None
        if state == "53300" or "too many clients" in msg or "remaining connection slots" in msg:
            raise ConnectError(f"{endpoint}: {msg}", "Connections refused: the server is full",
                               kind="too_many_clients",
                               hint="Every connection slot is taken: find who holds them "
                               "(SELECT usename, application_name, client_addr, state, count(*) "
                               "FROM pg_stat_activity GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC;) "
                               "and put a pooler (PgBouncer) in front, or raise "
                               "max_connections (restart).") from None
        raise ConnectError(f"{endpoint}: {msg}") from None


class Session(Abandonable):
    """One open connection and what we learnt about it (abandoned when busy past a
    deadline: plugins/session.py)."""

    def __init__(self, conn: Any, target: MiddlewareTarget, endpoint: str) -> None:
        super().__init__()
        self.conn = conn
        self.target = target
        self.endpoint = endpoint

    def alive(self) -> bool:
        return not self.conn.closed and not self.conn.broken

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # already broken: nothing left to release
            log.debug("close of %s failed", self.endpoint, exc_info=True)

    def batch(self, queries: Sequence[tuple[str, str]], deadline: Deadline
              ) -> dict[str, Rows | QueryFailure]:
        """Run ``(key, sql)`` statements in one round trip (pipeline mode).

        The server skips the rest of a pipeline after an error: the statement that failed
        is recorded and the rest are sent again as a new pipeline. Every pipeline starts
        with a ``statement_timeout`` sized from the deadline.
        """
        import psycopg
        from psycopg.rows import dict_row

        out: dict[str, Rows | QueryFailure] = {}
        pending = list(queries)
        while pending:
            deadline.check("postgres batch")
            ms = max(50, int(deadline.remaining(cap=30.0) * 1000))
            curs = []
            failed: QueryFailure | None = None
            try:
                with self.conn.pipeline():
                    self.conn.execute(f"SET statement_timeout = {ms}")
                    for _, sql in pending:
                        cur = self.conn.cursor(row_factory=dict_row)
                        curs.append(cur)
                        cur.execute(sql)
            except psycopg.Error as e:
                failed = failure_of(e)
                if failed is None:
                    raise
            done = 0
            for (key, _), cur in zip(pending, curs, strict=False):
                if cur.pgresult is None:
                    break
                out[key] = cur.fetchall() if cur.description is not None else []
                done += 1
            if done < len(pending):
                out[pending[done][0]] = failed or QueryFailure("", "no result", "error")
                done += 1
            pending = pending[done:]
        return out

    def rows(self, sql: str, params: Sequence[Any] | None, deadline: Deadline) -> Rows:
        """One statement with parameters (actions)."""
        from psycopg.rows import dict_row

        ms = max(50, int(deadline.remaining(cap=30.0) * 1000))
        self.conn.execute(f"SET statement_timeout = {ms}")
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description is not None else []
