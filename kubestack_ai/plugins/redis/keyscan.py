"""A bounded sample of the keyspace: the biggest keys, and expired keys still held.

Like ``redis-cli --memkeys`` / ``--bigkeys``, but never a full walk: SCAN in batches of
``COUNT 100`` until a key budget or a time budget is spent, with ``TYPE`` + ``MEMORY
USAGE`` and the type's length command pipelined per batch (one round trip each). On a
large keyspace the result is a sample (``complete`` False) and says so.

The scan also measures what no peer does: SCAN deletes the logically expired keys it
meets (on a master), and each one moves INFO's ``expired_keys``. The counter's movement
during the scan, less the background expiry expected over the same time, over the keys
met, estimates the share of keys that are expired but still hold memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

LENGTH_COMMAND: dict[str, str] = {
    "string": "STRLEN", "list": "LLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN",
    "stream": "XLEN",
}
BATCH = 100
NAME_MAX = 200


@dataclass
class BigKey:
    key: str
    type: str
    bytes: int
    elements: int

    def as_evidence(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "bytes": self.bytes,
                "elements": self.elements}


@dataclass
class KeySample:
    scanned: int = 0
    seconds: float = 0.0
    complete: bool = False
    """The scan came back to cursor 0: every key of the db was seen."""
    expired_during_scan: int = 0
    """INFO expired_keys movement while the scan ran (our scan's reclaims + background)."""
    keys: list[BigKey] = field(default_factory=list)
    error: str = ""


def sample_keys(client: Any, *, max_keys: int, max_seconds: float) -> KeySample:
    out = KeySample()
    t0 = time.monotonic()
    cursor = 0
    try:
        before = int(client.info("stats").get("expired_keys", 0))
        while True:
            cursor, batch = client.scan(cursor, count=BATCH)
            if batch:
                out.keys.extend(_measure(client, batch))
                out.scanned += len(batch)
            if cursor == 0:
                out.complete = True
                break
            if out.scanned >= max_keys or time.monotonic() - t0 >= max_seconds:
                break
    except Exception as e:  # a refused MEMORY/SCAN (ACL): what was read still counts
        out.error = f"{type(e).__name__}: {e}"
        out.seconds = time.monotonic() - t0
        return out
    out.seconds = time.monotonic() - t0
    try:
        out.expired_during_scan = int(client.info("stats").get("expired_keys", 0)) - before
    except Exception as e:  # the sample stands without the expiry estimate
        out.error = f"{type(e).__name__}: {e}"
    return out


def _measure(client: Any, batch: list[str]) -> list[BigKey]:
    pipe = client.pipeline(transaction=False)
    for k in batch:
        pipe.type(k)
        pipe.execute_command("MEMORY USAGE", k, "SAMPLES", 5)
    replies = pipe.execute(raise_on_error=False)
    types = [str(t) if not isinstance(t, Exception) else "none" for t in replies[0::2]]
    sizes = [int(s) if isinstance(s, int) else 0 for s in replies[1::2]]
    if any(isinstance(s, Exception) for s in replies[1::2]):
        raise next(s for s in replies[1::2] if isinstance(s, Exception))
    pipe = client.pipeline(transaction=False)
    asked = []
    for k, t in zip(batch, types, strict=True):
        cmd = LENGTH_COMMAND.get(t)
        if cmd:
            pipe.execute_command(cmd, k)
            asked.append(k)
    lengths = dict(zip(asked, pipe.execute(raise_on_error=False), strict=True)) if asked else {}
    return [BigKey(k[:NAME_MAX], t, size,
                   int(lengths[k]) if isinstance(lengths.get(k), int) else 0)
            for k, t, size in zip(batch, types, sizes, strict=True) if t != "none"]


def biggest(sample: KeySample, top_n: int) -> tuple[list[BigKey], list[BigKey]]:
    """(top by bytes, top by element count) of the sample; strings count bytes only."""
    by_bytes = sorted(sample.keys, key=lambda k: -k.bytes)[:top_n]
    by_elements = sorted((k for k in sample.keys if k.type != "string"),
                         key=lambda k: -k.elements)[:top_n]
    return by_bytes, by_elements
