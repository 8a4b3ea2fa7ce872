"""The connection to a Kafka cluster: kafka-python's ``KafkaClient``, requests built at
the protocol level so that they can be batched (one DescribeGroups per coordinator, one
ListOffsets per leader) and pipelined with a bound on the requests in flight.

kafka-python is imported here only, and this module only from ``connect``: listing
plugins never imports the driver.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

import kafka.errors as Errors
from kafka import KafkaClient
from kafka.conn import BrokerConnection, ConnectionStates

from ..deadline import Deadline
from ..errors import AuthError, ConfigError, ConnectError, DeadlineExceeded, PluginError
from ..logcontext import get_logger
from ..models import MiddlewareTarget, split_endpoint
from ..secrets import redact, resolve_secret
from .constants import CLIENT_ID, SASL_MECHANISMS

log = get_logger(__name__)

# kafka-python logs every failed connection attempt at ERROR with its own wording; the
# plugin reports those failures itself (findings, ConnectError), so keep the driver quiet.
for _name in ("kafka.conn", "kafka.client", "kafka.cluster"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


class RequestFailed(PluginError):
    """One request of a batch failed; carries the node and the cause."""

    def __init__(self, node: Any, cause: BaseException) -> None:
        self.node = node
        self.cause = cause
        super().__init__(f"broker {node}: {type(cause).__name__}: {cause}")


def client_config(target: MiddlewareTarget, request_timeout_s: float) -> tuple[dict[str, Any], list[str]]:
    """kafka-python settings for ``target`` and the secrets they hold (for redaction)."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": list(target.endpoints),
        "client_id": CLIENT_ID,
        "request_timeout_ms": int(request_timeout_s * 1000),
        "reconnect_backoff_ms": 50,
        "reconnect_backoff_max_ms": 1000,
        "max_in_flight_requests_per_connection": 16,
        "metadata_max_age_ms": 3_600_000,  # the plugin asks for metadata itself
        "connections_max_idle_ms": 3_600_000,
    }
    secrets: list[str] = []
    auth, tls = target.auth, target.tls
    sasl = auth is not None and (auth.username or auth.mechanism)
    use_tls = tls is not None and tls.enabled
    cfg["security_protocol"] = {(False, False): "PLAINTEXT", (False, True): "SSL",
                                (True, False): "SASL_PLAINTEXT",
                                (True, True): "SASL_SSL"}[(bool(sasl), use_tls)]
    if sasl and auth is not None:
        mechanism = (auth.mechanism or "PLAIN").upper()
        if mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"SASL mechanism {auth.mechanism!r} is not supported "
                              f"(use one of {', '.join(SASL_MECHANISMS)})")
        password = resolve_secret(auth.password) or ""
        secrets.append(password)
        cfg.update(sasl_mechanism=mechanism, sasl_plain_username=auth.username or "",
                   sasl_plain_password=password)
    if use_tls and tls is not None:
        key_password = resolve_secret(tls.key_password)
        if key_password:
            secrets.append(key_password)
        # our own context: kafka-python's default one uses the deprecated PROTOCOL_TLS
        ctx = ssl.create_default_context(cafile=tls.ca_file)
        if not tls.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if tls.cert_file:
            ctx.load_cert_chain(tls.cert_file, tls.key_file, key_password)
        cfg.update(ssl_context=ctx, ssl_check_hostname=tls.verify)
    return cfg, secrets


_AWAITING_KAFKA = frozenset({ConnectionStates.API_VERSIONS_SEND,
                             ConnectionStates.API_VERSIONS_RECV})
"""States in which the TCP (and TLS) connection is up and the broker's first answer awaited."""


class _ProbeConnection(BrokerConnection):  # type: ignore[misc]
    """Remembers why and in which state the connection was closed, so that a refused
    password (closed while authenticating) is told apart from an unreachable host."""

    first_error: BaseException | None = None
    failed_in: Any = None

    def close(self, error: Exception | None = None) -> None:
        if error is not None and self.first_error is None:
            self.first_error = error
            self.failed_in = self.state
        super().close(error)


FIRST_REPLY_WAIT = 1.5
"""Seconds a listener has to answer our first request (ApiVersions): a broker answers at
once; a port that stays silent (Redis, MySQL) is not a Kafka listener, and is said so
now rather than at the end of the request time-out."""
NOT_KAFKA_HINT = ("Another service answers on this port (Redis, MySQL, HTTP...), or a broker "
                  "that hangs: check the target's host and port (Kafka listens on 9092 by "
                  "default) and its security protocol (TLS, SASL).")


def probe(endpoint: str, cfg: dict[str, Any], secrets: list[str], deadline: Deadline) -> None:
    """Connect to one endpoint with the full handshake; raise AuthError or ConnectError."""
    host, port = split_endpoint(endpoint)
    kw = {k: v for k, v in cfg.items() if k != "bootstrap_servers"}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ConnectError(f"{endpoint}: cannot resolve {host}: {e.strerror or e}") from None
    conn = _ProbeConnection(host, port, infos[0][0], **kw)
    asked: float | None = None
    try:
        while not deadline.expired:
            try:
                conn.connect()
            except ssl.SSLError as e:  # a certificate refused: raised, not closed
                raise ConnectError(f"{endpoint}: TLS handshake failed ({type(e).__name__}: "
                                   f"{e})") from None
            if conn.connected():
                return
            if conn.disconnected():
                break
            if conn.state in _AWAITING_KAFKA:
                asked = asked or time.monotonic()
                if time.monotonic() - asked > FIRST_REPLY_WAIT:
                    break
            time.sleep(0.005)
        err = conn.first_error
        silent = err is None or isinstance(err, Errors.RequestTimedOutError)
        if silent and (conn.failed_in or conn.state) in _AWAITING_KAFKA:
            # TCP accepted, then silence: something else on the port, or a hung broker
            raise ConnectError(
                f"{endpoint}: not a Kafka broker: it accepted the connection but sent no "
                f"ApiVersions reply within "
                f"{min(FIRST_REPLY_WAIT, cfg.get('request_timeout_ms', 1e9) / 1000):g} s",
                title="Not a Kafka broker", kind="not_kafka", hint=NOT_KAFKA_HINT)
        text = str(err) if err is not None else ""
        if err is not None and not text.startswith(type(err).__name__):
            text = f"{type(err).__name__}: {text}"
        what = redact(text or "no answer before the deadline", *secrets)
        if conn.failed_in is ConnectionStates.AUTHENTICATING:
            if isinstance(err, KeyError):
                # kafka-python's SCRAM client expects the server's proof ("v=") and
                # fails on a server-final message carrying an error ("e=...") instead
                what = "the server ended the SCRAM exchange with an error instead of its proof"
            mech = cfg.get("sasl_mechanism")
            user = cfg.get("sasl_plain_username")
            raise AuthError(f"{endpoint}: SASL {mech} authentication as {user!r} was refused "
                            f"({what})")
        if conn.failed_in is ConnectionStates.HANDSHAKE:
            raise ConnectError(f"{endpoint}: TLS handshake failed ({what})")
        raise ConnectError(f"{endpoint}: {what}")
    finally:
        conn.close()


class Wire:
    """A connected ``KafkaClient`` and batched, bounded request sending."""

    def __init__(self, client: KafkaClient, secrets: list[str], max_in_flight: int,
                 request_timeout_s: float) -> None:
        self.client = client
        self.secrets = secrets
        self.max_in_flight = max_in_flight
        self.request_timeout_s = request_timeout_s
        self.node_errors: dict[Any, str] = {}
        """Brokers given up on during this run (cleared by the plugin at each run)."""

    # -- connection ------------------------------------------------------------------

    @classmethod
    def open(cls, target: MiddlewareTarget, deadline: Deadline, *, max_in_flight: int = 32,
             request_timeout_s: float = 10.0) -> Wire:
        timeout = max(0.05, deadline.remaining(cap=request_timeout_s))
        cfg, secrets = client_config(target, timeout)
        cfg["api_version_auto_timeout_ms"] = int(timeout * 1000)
        # One full handshake first (TCP, TLS, ApiVersions, SASL): a refused port fails at
        # once and a refused password is named as such. KafkaClient itself retries until
        # its timeout, and is created even with a wrong password (ApiVersions comes first).
        errors: list[ConnectError] = []
        for ep in target.endpoints:
            try:
                probe(ep, cfg, secrets, deadline.child(timeout))
                break
            except AuthError:
                raise
            except ConnectError as e:
                errors.append(e)
        else:
            causes = {(e.title, e.kind, e.hint) for e in errors}
            title, kind, hint = causes.pop() if len(causes) == 1 else (None, None, None)
            raise ConnectError("; ".join(map(str, errors)), title=title, kind=kind, hint=hint)
        try:
            client = KafkaClient(**cfg)
        except Errors.KafkaError as e:
            raise ConnectError(redact(f"{type(e).__name__}: {e}", *secrets)) from None
        return cls(client, secrets, max_in_flight, timeout)

    def alive(self, deadline: Deadline) -> bool:
        """Can a request be sent now? (A reused client may face a broker that went away.)"""
        node = self.client.least_loaded_node()
        if node is None:
            return False
        try:
            return bool(self.client.await_ready(
                node, timeout_ms=1000 * deadline.remaining(cap=min(2.0, self.request_timeout_s))))
        except Errors.KafkaError:
            return False

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing a half-open client must not mask the real error
            log.debug("kafka client close failed", exc_info=True)

    # -- requests --------------------------------------------------------------------

    def version(self, api: Sequence[Any], max_version: int | None = None) -> int:
        return int(self.client.api_version(api, max_version=max_version))

    def any_node(self) -> Any:
        node = self.client.least_loaded_node()
        if node is None:
            raise ConnectError("no broker is available")
        return node

    def call(self, node: Any, request: Any, deadline: Deadline) -> Any:
        out = self.call_many([(node, request)], deadline)[0]
        if isinstance(out, RequestFailed):
            raise out
        return out

    def call_many(self, calls: Sequence[tuple[Any, Any]], deadline: Deadline,
                  node_timeout_s: float | None = None) -> list[Any]:
        """Send every (node, request), at most ``max_in_flight`` at once (and at most the
        connection's own limit per broker). Returns responses in order; a failed request
        gives a :class:`RequestFailed` in its place, so one broker cannot fail the batch."""
        client = self.client
        per_conn = int(client.config["max_in_flight_requests_per_connection"])
        wait_node = node_timeout_s if node_timeout_s is not None else self.request_timeout_s
        results: list[Any] = [None] * len(calls)
        pending: deque[int] = deque(range(len(calls)))
        inflight: dict[int, tuple[Any, Any]] = {}
        per_node: dict[Any, int] = defaultdict(int)
        waiting_since: dict[Any, float] = {}
        while pending or inflight:
            if deadline.expired:
                raise DeadlineExceeded(f"{len(pending) + len(inflight)} Kafka requests "
                                       "not answered before the deadline")
            held: list[int] = []
            while pending and len(inflight) < self.max_in_flight:
                i = pending.popleft()
                node, request = calls[i]
                if node in self.node_errors:
                    results[i] = RequestFailed(node, Errors.NodeNotReadyError(self.node_errors[node]))
                    continue
                if per_node[node] >= per_conn:
                    held.append(i)
                    continue
                if not client.ready(node):
                    if client.cluster.broker_metadata(node) is None:
                        self.node_errors[node] = "not in the cluster metadata"
                        results[i] = RequestFailed(node, Errors.NodeNotReadyError(self.node_errors[node]))
                        continue
                    since = waiting_since.setdefault(node, time.monotonic())
                    if time.monotonic() - since > wait_node:
                        self.node_errors[node] = f"not connected after {wait_node:g}s"
                        results[i] = RequestFailed(node, Errors.NodeNotReadyError(self.node_errors[node]))
                    else:
                        held.append(i)
                    continue
                waiting_since.pop(node, None)
                timeout_ms = max(1.0, deadline.remaining(cap=self.request_timeout_s) * 1000)
                fut = client.send(node, request, request_timeout_ms=timeout_ms)
                if fut.is_done and fut.failed():
                    results[i] = RequestFailed(node, fut.exception)
                    continue
                inflight[i] = (fut, node)
                per_node[node] += 1
            pending.extendleft(reversed(held))
            if not pending and not inflight:
                break
            wait = 0.01 if held and not inflight else 0.2
            client.poll(timeout_ms=1000 * min(wait, max(0.001, deadline.remaining())))
            for i, (fut, node) in list(inflight.items()):
                if fut.is_done:
                    results[i] = fut.value if fut.succeeded() else RequestFailed(node, fut.exception)
                    del inflight[i]
                    per_node[node] -= 1
        return results

    def reach(self, nodes: Sequence[Any], deadline: Deadline, timeout_s: float) -> dict[Any, str | None]:
        """Open a connection to every node at once; None where it worked, else why not."""
        client = self.client
        out: dict[Any, str | None] = {}
        todo = set(nodes)
        t0 = time.monotonic()
        while todo and not deadline.expired and time.monotonic() - t0 < timeout_s:
            for node in list(todo):
                if client.ready(node):
                    out[node] = None
                    todo.discard(node)
                elif client.connection_failed(node) and time.monotonic() - t0 > 0.2:
                    out[node] = "connection failed"
                    todo.discard(node)
            if todo:
                client.poll(timeout_ms=10)
        for node in todo:
            out[node] = f"not connected after {timeout_s:g}s"
        return out
