"""The keyspace walked a budget at a time: the biggest keys, and expired keys still held.

Like ``redis-cli --memkeys`` / ``--bigkeys``, but spread over runs: SCAN in batches of
``COUNT 100`` until a key budget or a time budget is spent, with ``TYPE`` + ``MEMORY
USAGE`` and the type's length command pipelined per batch (one round trip each).

Where a run stops, the next one resumes: the SCAN cursor is kept with the run's metrics
(``bigkeys_scan``, a :class:`ScanState`) and read back from history, so every key is
met within ``keys / budget`` runs, wherever it sits in the hash table (a walk that
always starts at cursor 0 meets the same first keys every run). The big keys already
found are re-measured every run (one ``MEMORY USAGE`` each): once seen, a big key stays
in the finding while it is big. A keyspace no larger than the budget is walked whole
every run; without history (a one-off ``ksa diagnose``) one up to
``bigkeys_full_scan_keys`` keys is. SCAN guarantees that a key present for the whole
walk is returned, across rehashing: the coverage a pass reports is of those keys.

The scan also measures what no peer does: SCAN deletes the logically expired keys it
meets (on a master), and each one moves INFO's ``expired_keys``. The counter's movement
during the scan, less the background expiry expected over the same time, over the keys
met, estimates the share of keys that are expired but still hold memory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

LENGTH_COMMAND: dict[str, str] = {
    "string": "STRLEN", "list": "LLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN",
    "stream": "XLEN",
}
BATCH = 100
NAME_MAX = 200
KNOWN_MAX = 50
"""Big keys carried from run to run for re-measuring, at most."""
STATE_METRIC = "bigkeys_scan"


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
    cursor: int = 0
    """Where the walk stopped (0: it reached the end of the keyspace)."""
    remeasured: int = 0
    """Big keys known from earlier runs measured again (those the walk did not meet)."""
    state: ScanState | None = None
    """The pass this walk belongs to, as kept for the next run."""
    dbsize: int = 0


@dataclass
class ScanState:
    """A pass over the keyspace, carried from run to run in ``run.metrics``."""

    cursor: int = 0
    """Where the next run resumes (0: a new pass starts)."""
    pass_started: float = 0.0
    """Unix time this pass's first run began."""
    pass_keys: int = 0
    """Keys met by this pass so far."""
    run_id: str = ""
    known: list[str] = field(default_factory=list)
    """Big keys found so far (by any pass), re-measured every run."""
    last_complete: float | None = None
    """Unix time the last pass reached the end of the keyspace."""
    last_complete_started: float | None = None

    def encode(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def decode(cls, payload: Any) -> ScanState | None:
        if not isinstance(payload, Mapping):
            return None
        try:
            return cls(cursor=int(payload["cursor"]), pass_started=float(payload["pass_started"]),
                       pass_keys=int(payload["pass_keys"]), run_id=str(payload["run_id"]),
                       known=[str(k) for k in payload.get("known", [])][:KNOWN_MAX],
                       last_complete=_opt(payload.get("last_complete")),
                       last_complete_started=_opt(payload.get("last_complete_started")))
        except (KeyError, TypeError, ValueError):
            return None  # malformed: a new pass


def _opt(v: Any) -> float | None:
    return None if v is None else float(v)


def previous_state(history: Sequence[Any], node: str | None) -> ScanState | None:
    """The newest stored pass of this node (``node`` None: a standalone server's)."""
    for snap in reversed(history):
        m = snap.metrics if node is None else snap.metrics.get("nodes", {}).get(node, {})
        state = ScanState.decode(m.get(STATE_METRIC)) if isinstance(m, Mapping) else None
        if state is not None:
            return state
    return None


def scan_run(client: Any, prev: ScanState | None, *, run_id: str, dbsize: int, now: float,
             max_keys: int, max_seconds: float, whole_keys: int) -> KeySample:
    """One run's share of the pass ``prev`` left (a new pass without one): at most
    ``max_keys`` keys and ``max_seconds`` from its cursor, or the whole keyspace from 0
    when it holds no more than ``whole_keys`` keys; then the known big keys not met."""
    state = ScanState(run_id=run_id) if prev is None else prev
    if state.run_id != run_id:  # another server process: its keys, a new pass
        state = ScanState(run_id=run_id, known=state.known)
    whole = dbsize <= whole_keys
    if whole or state.cursor == 0:
        state.cursor, state.pass_started, state.pass_keys = 0, now, 0
    if whole:
        max_keys = max(max_keys, dbsize + BATCH)
    start = state.cursor
    out = sample_keys(client, max_keys=max_keys, max_seconds=max_seconds, cursor=start)
    state.pass_keys += out.scanned
    if out.complete:  # the pass reached the end of the keyspace
        state.last_complete, state.last_complete_started = now, state.pass_started
        out.complete = start == 0  # and this run walked all of it
    state.cursor = out.cursor
    met = {k.key for k in out.keys}
    missing = [k for k in state.known if k not in met]
    if missing and not out.error:
        try:
            again = _measure(client, missing)
            out.keys.extend(again)
            out.remeasured = len(again)
        except Exception as e:  # a refused MEMORY USAGE: the walk's keys still count
            out.error = f"{type(e).__name__}: {e}"
    out.state, out.dbsize = state, dbsize
    return out


def remember(state: ScanState, keys: Sequence[BigKey]) -> None:
    """The big keys the next run re-measures (biggest first, at most KNOWN_MAX)."""
    state.known = list(dict.fromkeys(k.key for k in sorted(keys, key=lambda k: -k.bytes)))
    del state.known[KNOWN_MAX:]


def coverage_pct(sample: KeySample) -> float:
    """How much of the keyspace the current pass has met (100 for a whole walk)."""
    if sample.complete or sample.state is None:
        return 100.0 if sample.complete else 0.0
    if sample.state.cursor == 0:  # the pass ended this run
        return 100.0
    return min(100.0, 100.0 * sample.state.pass_keys / max(sample.dbsize, 1))


def sample_keys(client: Any, *, max_keys: int, max_seconds: float, cursor: int = 0
                ) -> KeySample:
    out = KeySample()
    t0 = time.monotonic()
    try:
        before = int(client.info("stats").get("expired_keys", 0))
        while True:
            cursor, batch = client.scan(cursor, count=BATCH)
            if batch:
                out.keys.extend(_measure(client, batch))
                out.scanned += len(batch)
            out.cursor = int(cursor)
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
