"""A SASL and TLS front for a plain Tansu broker: TLS termination (optional), the server
side of Kafka's SaslHandshake and SaslAuthenticate (PLAIN and SCRAM-SHA-256/512 per RFC
5802/7677; skipped when it knows no users), then a transparent byte pipe to the broker.

Why it exists: Tansu 0.6.0 with ``--authentication`` cannot be given a user. Its users
are created with AlterUserScramCredentials, which it only accepts from an authenticated
client; it offers no PLAIN; and its memory and S3 stores do not share users between
broker processes (checked: the user written through one broker is not seen by another
on the same bucket). So the tests that need a *successful* SCRAM login put this front,
which speaks the real protocol to kafka-python, before a plain Tansu. The refusal of a
wrong password is also tested against Tansu's own ``--authentication``. TLS likewise:
Tansu 0.6.0 refuses ``--cert`` with ``--key`` together, and with ``--cert`` alone (a
combined PEM) it never completes a handshake (openssl s_client gets no answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import selectors
import socket
import ssl
import struct
import threading
from typing import Any

_ALGO = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_SASL_FAILED = 58
_UNSUPPORTED_MECHANISM = 33


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    return _recv_exact(sock, size)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def _string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def _bytes(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


class ScramUser:
    def __init__(self, password: str, mechanism: str, iterations: int = 4096) -> None:
        self.algo = _ALGO[mechanism]
        self.salt = os.urandom(16)
        self.iterations = iterations
        salted = hashlib.pbkdf2_hmac(self.algo, password.encode(), self.salt, iterations)
        self.stored_key = hashlib.new(self.algo, self._hmac(salted, b"Client Key")).digest()
        self.server_key = self._hmac(salted, b"Server Key")

    def _hmac(self, key: bytes, msg: bytes) -> bytes:
        return hmac.new(key, msg, self.algo).digest()


class SaslFront:
    """Listens on ``port``; forwards authenticated connections to ``backend``."""

    def __init__(self, port: int, backend: tuple[str, int], users: dict[str, str],
                 mechanisms: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
                 tls: ssl.SSLContext | None = None) -> None:
        self.backend = backend
        self.tls = tls
        self.passwords = users
        self.mechanisms = mechanisms
        self.scram = {(u, m): ScramUser(p, m) for u, p in users.items() for m in _ALGO}
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = port
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        t = threading.Thread(target=self._accept, name="sasl-front", daemon=True)
        t.start()
        self._threads.append(t)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        backend = socket.create_connection(self.backend)
        self._conns.append(backend)
        try:
            if self.tls is not None:
                client = self.tls.wrap_socket(client, server_side=True)
                self._conns.append(client)
            if not self.passwords or self._authenticate(client, backend):
                self._pump(client, backend)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for s in (client, backend):
                try:
                    s.close()
                except OSError:
                    pass

    @staticmethod
    def _pump(client: socket.socket, backend: socket.socket) -> None:
        """Both directions in one thread: an SSL socket must not be read and written
        from two threads at once."""
        other = {client: backend, backend: client}
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ)
            sel.register(backend, selectors.EVENT_READ)
            while True:
                ready = [k.fileobj for k, _ in sel.select(timeout=1.0)]
                if isinstance(client, ssl.SSLSocket) and client.pending() and client not in ready:
                    ready.append(client)
                for src in ready:
                    data = src.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    other[src].sendall(data)  # type: ignore[index]

    def _authenticate(self, client: socket.socket, backend: socket.socket) -> bool:
        mechanism: str | None = None
        state: dict[str, Any] = {}
        while True:
            req = _read_frame(client)
            if req is None:
                return False
            api_key, version, corr = struct.unpack(">hhi", req[:8])
            if api_key == 18:  # ApiVersions: the broker's own answer
                backend.sendall(_frame(req))
                resp = _read_frame(backend)
                if resp is None:
                    return False
                client.sendall(_frame(resp))
            elif api_key == 17:  # SaslHandshake
                body = req[10 + max(0, struct.unpack(">h", req[8:10])[0]):]
                (mlen,) = struct.unpack(">h", body[:2])
                mechanism = body[2:2 + mlen].decode()
                err = 0 if mechanism in self.mechanisms else _UNSUPPORTED_MECHANISM
                mechs = b"".join(_string(m) for m in self.mechanisms)
                client.sendall(_frame(struct.pack(">ih", corr, err)
                                      + struct.pack(">i", len(self.mechanisms)) + mechs))
                if err:
                    return False
            elif api_key == 36 and mechanism:  # SaslAuthenticate
                body = req[10 + max(0, struct.unpack(">h", req[8:10])[0]):]
                (blen,) = struct.unpack(">i", body[:4])
                token = body[4:4 + blen]
                ok, reply, done = self._step(mechanism, token, state)
                err = 0 if ok else _SASL_FAILED
                msg = None if ok else (f"Authentication failed during authentication due to "
                                       f"invalid credentials with SASL mechanism {mechanism}")
                payload = struct.pack(">ih", corr, err) + _string(msg) + _bytes(reply)
                if version >= 1:
                    payload += struct.pack(">q", 0)
                client.sendall(_frame(payload))
                if not ok:
                    return False
                if done:
                    return True
            else:  # anything else before authentication: Kafka closes the connection
                return False

    def _step(self, mechanism: str, token: bytes, state: dict[str, Any]) -> tuple[bool, bytes, bool]:
        if mechanism == "PLAIN":
            _authz, user, password = token.decode().split("\0")
            return self.passwords.get(user) == password, b"", True
        if "first" not in state:
            bare = token.decode().split(",", 2)[2]  # drop the gs2 header "n,,"
            attrs = dict(kv.split("=", 1) for kv in bare.split(","))
            user = self.scram.get((attrs["n"], mechanism))
            if user is None:
                return False, b"", True
            nonce = attrs["r"] + base64.b64encode(os.urandom(18)).decode()
            first = f"r={nonce},s={base64.b64encode(user.salt).decode()},i={user.iterations}"
            state.update(first=first, bare=bare, user=user, nonce=nonce)
            return True, first.encode(), False
        final = token.decode()
        without_proof, _, proof_b64 = final.rpartition(",p=")
        user: ScramUser = state["user"]
        auth_message = f"{state['bare']},{state['first']},{without_proof}".encode()
        signature = user._hmac(user.stored_key, auth_message)
        proof = base64.b64decode(proof_b64)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=False))
        if (dict(kv.split("=", 1) for kv in without_proof.split(",")).get("r") != state["nonce"]
                or hashlib.new(user.algo, client_key).digest() != user.stored_key):
            return False, b"", True
        server_sig = base64.b64encode(user._hmac(user.server_key, auth_message)).decode()
        return True, f"v={server_sig}".encode(), True
