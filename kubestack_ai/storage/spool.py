"""The spool: runs that could not be written to the database, kept on local disk until
they can be.

One JSON file per run under the spool directory (``$KSA_HOME/spool`` for the workers and
the CLI), written to a temporary name, fsynced and renamed into place (then the
directory fsynced): a record is either whole on disk or absent, across a crash of the
process or the machine. Any process may flush the spool; one flushes at a time (an
``flock`` the others skip), oldest record first. Writing a record twice is harmless:
``Store.record_run`` is idempotent by run id.

The end of an action whose worker child died (``SpooledActionEnd``: the worker's main
process saw it and may not wait on the network) is kept the same way and written by the
same flushes, idempotently too (only a row still ``started`` is closed).

Bounded: past ``max_records`` the oldest record is dropped to make room; each drop is
logged at ERROR and appended to ``dropped.log`` (one line per run: when, run id), so
the count survives restarts. A record the database refuses for a reason other than
being unreachable (a value it cannot store, a bug) is set aside under ``rejected/``,
logged with its run id, and never blocks the records behind it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubestack_ai.plugins.logcontext import get_logger
from kubestack_ai.plugins.models import DiagnosticResult

from .engine import ENV_HOME
from .errors import StorageError, StorageUnavailable

log = get_logger(__name__)

MAX_RECORDS = 10_000
"""Records kept at most (a run is a few KiB: tens of MiB at most)."""

_SUFFIX = ".run.json"


def default_dir(environ: dict[str, str] | None = None) -> Path:
    """``$KSA_HOME/spool`` (``KSA_HOME`` defaults to ``~/.ksa``)."""
    env = os.environ if environ is None else environ
    return Path(env.get(ENV_HOME) or Path.home() / ".ksa").expanduser() / "spool"


@dataclass(frozen=True)
class SpooledRun:
    """The arguments of one ``Store.record_run`` call."""

    run_id: str
    target_key: str
    plugin_id: str
    categories: tuple[str, ...]
    result: DiagnosticResult
    ttl: float | None
    supersede_failed: bool = True

    def record(self, store: Any) -> bool:
        """Write it with ``store.record_run`` (a ``storage.Store``)."""
        return bool(store.record_run(self.run_id, self.target_key, self.plugin_id,
                                     self.categories, self.result, self.ttl,
                                     supersede_failed=self.supersede_failed))

    def to_json(self) -> str:
        return json.dumps({"v": 1, "run_id": self.run_id, "target_key": self.target_key,
                           "plugin_id": self.plugin_id, "categories": list(self.categories),
                           "ttl": self.ttl, "supersede_failed": self.supersede_failed,
                           "result": self.result.model_dump(mode="json")})

    @classmethod
    def from_json(cls, text: str) -> SpooledRun:
        d = json.loads(text)
        return cls(run_id=str(d["run_id"]), target_key=str(d["target_key"]),
                   plugin_id=str(d["plugin_id"]), categories=tuple(d["categories"]),
                   result=DiagnosticResult.model_validate(d["result"]),
                   ttl=None if d["ttl"] is None else float(d["ttl"]),
                   supersede_failed=bool(d.get("supersede_failed", True)))


@dataclass(frozen=True)
class SpooledActionEnd:
    """The arguments of one ``Store.end_started_action`` call: the end of an action whose
    worker child died (seen by the worker's main process, which may not wait on the
    network). ``run_id`` is the task id, as for a run."""

    run_id: str
    outcome: str
    error: str
    ended_at: dt.datetime

    def record(self, store: Any) -> bool:
        """Close the task's ``started`` audit row, if it still is (a second copy: no-op)."""
        return bool(store.end_started_action(self.run_id, self.outcome, self.error,
                                             self.ended_at))

    def to_json(self) -> str:
        return json.dumps({"v": 1, "kind": "action_end", "run_id": self.run_id,
                           "outcome": self.outcome, "error": self.error,
                           "ended_at": self.ended_at.isoformat()})


Spooled = SpooledRun | SpooledActionEnd


def load(text: str) -> Spooled:
    """A spooled record from its JSON (a run unless it says otherwise)."""
    d = json.loads(text)
    if d.get("kind") == "action_end":
        return SpooledActionEnd(run_id=str(d["run_id"]), outcome=str(d["outcome"]),
                                error=str(d["error"]),
                                ended_at=dt.datetime.fromisoformat(d["ended_at"]))
    return SpooledRun.from_json(text)


@dataclass
class FlushReport:
    written: int = 0
    rejected: int = 0
    left: int = 0
    error: str | None = None
    skipped: bool = False
    """Another process was flushing: this call did nothing."""
    rejected_ids: list[str] = field(default_factory=list)


class Spool:
    def __init__(self, directory: str | Path, max_records: int = MAX_RECORDS) -> None:
        self.dir = Path(directory)
        self.max_records = max_records

    # -- writing ------------------------------------------------------------------------

    def put(self, run: Spooled) -> Path:
        """Keep one run durably (fsynced). Drops the oldest records past the bound."""
        self.dir.mkdir(parents=True, exist_ok=True)
        names = self._names()
        for old in names[: max(0, len(names) - self.max_records + 1)]:
            self._drop(old)
        digest = hashlib.sha256(run.run_id.encode()).hexdigest()[:16]
        name = f"{time.time_ns():020d}-{os.getpid()}-{digest}{_SUFFIX}"
        tmp = self.dir / f".{name}.tmp"
        data = run.to_json().encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        path = self.dir / name
        os.replace(tmp, path)
        self._fsync_dir()
        return path

    def _drop(self, name: str) -> None:
        path = self.dir / name
        try:
            run_id = load(path.read_text(encoding="utf-8")).run_id
        except (OSError, ValueError, KeyError, TypeError):
            run_id = "?"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        with open(self.dir / "dropped.log", "a", encoding="utf-8") as fh:
            fh.write(f"{dt.datetime.now(dt.UTC).isoformat()} {run_id}\n")
        log.error("spool %s full (%d runs): dropped the oldest run %s (%d dropped in all)",
                  self.dir, self.max_records, run_id, self.dropped())

    def dropped(self) -> int:
        """Runs dropped because the spool was full, since it was created."""
        try:
            with open(self.dir / "dropped.log", encoding="utf-8") as fh:
                return sum(1 for _ in fh)
        except FileNotFoundError:
            return 0

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading ------------------------------------------------------------------------

    def _names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.dir) if n.endswith(_SUFFIX))
        except FileNotFoundError:
            return []

    def __len__(self) -> int:
        return len(self._names())

    def run_ids(self) -> list[str]:
        out = []
        for name in self._names():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                out.append(load((self.dir / name).read_text("utf-8")).run_id)
        return out

    def rejected(self) -> list[Path]:
        d = self.dir / "rejected"
        return sorted(d.iterdir()) if d.is_dir() else []

    @contextlib.contextmanager
    def _flushing(self) -> Iterator[bool]:
        """True when this process holds the flush lock (no other process flushes now)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / ".flush.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def flush(self, write: Callable[[Spooled], Any], budget: float = 10.0) -> FlushReport:
        """Write the kept runs with ``write`` (a bounded ``Store.record_run``), oldest first,
        for at most ``budget`` seconds. Stops at the first StorageUnavailable (the database
        is down: the rest waits for the next flush); a record refused for any other
        reason is set aside under ``rejected/`` and the flush goes on."""
        report = FlushReport()
        if not self._names():
            return report
        deadline = time.monotonic() + budget
        with self._flushing() as mine:
            if not mine:
                report.skipped = True
                return report
            names = self._names()
            for i, name in enumerate(names):
                if time.monotonic() > deadline:
                    report.left = len(names) - i
                    break
                path = self.dir / name
                try:
                    run = load(path.read_text(encoding="utf-8"))
                except FileNotFoundError:
                    continue
                except (OSError, ValueError, KeyError, TypeError) as e:
                    self._reject(path, "?", f"unreadable: {type(e).__name__}", report)
                    continue
                try:
                    write(run)
                except StorageUnavailable as e:
                    report.error = str(e)
                    report.left = len(names) - i
                    break
                except StorageError as e:
                    self._reject(path, run.run_id, str(e), report)
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                report.written += 1
        if report.written:
            log.info("spool %s: wrote %d kept runs (%d left)", self.dir, report.written,
                     report.left)
        return report

    def set_aside(self, run: Spooled, why: str) -> None:
        """Keep a run the database refused (not for being down) under ``rejected/``."""
        d = self.dir / "rejected"
        try:
            d.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256(run.run_id.encode()).hexdigest()[:16]
            (d / f"{time.time_ns():020d}-{os.getpid()}-{digest}{_SUFFIX}").write_text(
                run.to_json(), encoding="utf-8")
        except (OSError, ValueError) as e:
            log.error("spool %s: run %s cannot be set aside: %s", self.dir, run.run_id, e)
            return
        log.error("spool %s: run %s set aside in %s, the database refuses it: %s",
                  self.dir, run.run_id, d, why)

    def _reject(self, path: Path, run_id: str, why: str, report: FlushReport) -> None:
        d = self.dir / "rejected"
        d.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, d / path.name)
        report.rejected += 1
        report.rejected_ids.append(run_id)
        log.error("spool %s: run %s set aside in %s, the database refuses it: %s",
                  self.dir, run_id, d, why)
