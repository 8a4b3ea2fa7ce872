"""The wire between a worker and its plugin host: length-prefixed JSON messages over a
Unix stream socket pair, with file descriptors passed beside a message (``SCM_RIGHTS``:
connections the parent opened for the host, which has no network of its own).

A message is a 4-byte big-endian length, then that many bytes of JSON. At most
:data:`MAX_MESSAGE` bytes: a host that sends more is broken or hostile, and is killed.
"""

from __future__ import annotations

import array
import json
import socket
import struct
from typing import Any

MAX_MESSAGE = 64 * 1024 * 1024
_LEN = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer closed the socket or sent something that is not a message."""


def send(sock: socket.socket, msg: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    body = json.dumps(msg, separators=(",", ":"), default=str).encode()
    data = _LEN.pack(len(body)) + body
    if fds:
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        sent = sock.sendmsg([data], anc)
        data = data[sent:]
    if data:
        sock.sendall(data)


def recv(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One message and the descriptors that came with it; ProtocolError on EOF."""
    fds: list[int] = []
    head = _recv_exact(sock, _LEN.size, fds)
    (n,) = _LEN.unpack(head)
    if n > MAX_MESSAGE:
        raise ProtocolError(f"message of {n} bytes (at most {MAX_MESSAGE})")
    body = _recv_exact(sock, n, fds)
    try:
        msg = json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("not a JSON object")
    return msg, fds


def _recv_exact(sock: socket.socket, n: int, fds: list[int]) -> bytes:
    buf = bytearray()
    size = socket.CMSG_SPACE(array.array("i").itemsize * 4)
    while len(buf) < n:
        data, anc, _flags, _addr = sock.recvmsg(n - len(buf), size)
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                arr = array.array("i")
                arr.frombytes(payload[: len(payload) - len(payload) % arr.itemsize])
                fds.extend(arr)
        if not data:
            raise ProtocolError("connection closed")
        buf += data
    return bytes(buf)
