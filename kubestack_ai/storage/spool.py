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

A record is written whole or not at all: the bytes go to a temporary file (every one
of them: a short write on a full disk is continued, and fails with ENOSPC), which is
fsynced and renamed into place; a write that fails removes its temporary file. A
temporary file left by a process that died mid-write is removed by ``clean()``, which
the worker and ``ksa run`` call at start.

Bounded: past ``max_records`` the oldest record is dropped to make room. Every lost run
(dropped to make room, not written for lack of disk, or a record found unreadable) is
logged once at ERROR and counted in ``dropped.count``, a fixed-width counter created
with the spool and rewritten in place (so it still counts when the disk is full; the
web view's ``/metrics`` shows it as ``ksa_spool_lost_runs_total``); ``dropped.log``
adds a line per lost run (when, run id, why) while there is room for it. A record the
database refuses for a reason other than being unreachable (a value it cannot store, a
bug) is set aside under ``rejected/``, logged with its run id and file, and never
blocks the records behind it.
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
_TMP = ".tmp"
_COUNT = "dropped.count"
_COUNT_WIDTH = 20
TMP_AGE = 60.0
"""Seconds after which a temporary file is a leftover even if its writer's pid runs (a
record is written in milliseconds; the pid may be another process's by now)."""


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
        """Keep one run durably (fsynced), whole or not at all: an OSError (ENOSPC) leaves
        nothing behind and is the caller's to report (``lose``). Drops the oldest
        records past the bound."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._counter()
        names = self._names()
        for old in names[: max(0, len(names) - self.max_records + 1)]:
            self._drop(old)
        path = self.dir / _record_name(run)
        write_whole(path, run.to_json().encode())
        self._fsync_dir()
        return path

    def clean(self) -> int:
        """Remove temporary files a writer left when it died mid-write (its pid gone, or
        older than ``TMP_AGE``) and create the loss counter: at start. How many removed."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self._counter()
        removed = 0
        for d in (self.dir, self.dir / "rejected"):
            try:
                names = [n for n in os.listdir(d) if n.endswith(_TMP)]
            except FileNotFoundError:
                continue
            for name in names:
                if _leftover(d / name):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(d / name)
                        removed += 1
        if removed:
            log.warning("spool %s: removed %d temporary files left by a writer that died",
                        self.dir, removed)
        return removed

    def lose(self, run_id: str, why: str) -> None:
        """Count and log (once) a run that is lost: it will never be written."""
        log.error("spool %s: run %s lost: %s (%s)", self.dir, run_id, why,
                  self._counted(run_id, why))

    def _counted(self, run_id: str, why: str) -> str:
        """Count one lost run (counter, and a line in dropped.log while there is room);
        the count for its log line."""
        n = self._count_loss()
        with contextlib.suppress(OSError):
            with open(self.dir / "dropped.log", "a", encoding="utf-8") as fh:
                fh.write(f"{dt.datetime.now(dt.UTC).isoformat()} {run_id} {why}\n")
        return f"{n} lost in all" if n is not None else "the loss counter cannot be written"

    def _counter(self) -> None:
        """Create the counter (zero) while there is room: later losses rewrite it in place."""
        path = self.dir / _COUNT
        if path.exists():
            return
        with contextlib.suppress(OSError):
            write_whole(path, b"0" * _COUNT_WIDTH + b"\n", exclusive=True)

    def _count_loss(self) -> int | None:
        """One more lost run in the counter file (under its lock); the new count."""
        try:
            fd = os.open(self.dir / _COUNT, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            n = _parse_count(os.pread(fd, _COUNT_WIDTH + 1, 0)) + 1
            # the same bytes in the same block: no new space needed on a full disk
            if os.pwrite(fd, f"{n:0{_COUNT_WIDTH}d}\n".encode(), 0) != _COUNT_WIDTH + 1:
                return None
            os.fsync(fd)
            return n
        except OSError:
            return None
        finally:
            os.close(fd)

    def _drop(self, name: str) -> None:
        path = self.dir / name
        try:
            run_id = load(path.read_text(encoding="utf-8")).run_id
        except (OSError, ValueError, KeyError, TypeError):
            run_id = f"in file {name}"
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.lose(run_id, f"spool full ({self.max_records} runs): the oldest run dropped")

    def dropped(self) -> int:
        """Runs lost (spool full, disk full, unreadable) since the spool was created."""
        try:
            with open(self.dir / _COUNT, "rb") as fh:
                return _parse_count(fh.read(_COUNT_WIDTH + 1))
        except OSError:
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
                    self._reject(path, None, _unreadable(path, e), report)
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
            path = d / _record_name(run)
            write_whole(path, run.to_json().encode())
        except (OSError, ValueError) as e:
            self.lose(run.run_id, f"the database refuses it ({why}) and it cannot be set "
                                  f"aside: {getattr(e, 'strerror', None) or e}")
            return
        log.error("spool %s: run %s set aside in %s as %s, the database refuses it: %s",
                  self.dir, run.run_id, d, path.name, why)

    def _reject(self, path: Path, run_id: str | None, why: str, report: FlushReport) -> None:
        """Move a record the database refuses (``run_id``) or that cannot be read (None:
        counted as lost) under ``rejected/``."""
        d = self.dir / "rejected"
        d.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, d / path.name)
        report.rejected += 1
        if run_id is None:
            log.error("spool %s: file %s set aside in %s: %s; its run is lost (%s)", self.dir,
                      path.name, d, why, self._counted(f"in file {path.name}", why))
            return
        report.rejected_ids.append(run_id)
        log.error("spool %s: run %s set aside in %s as %s, the database refuses it: %s",
                  self.dir, run_id, d, path.name, why)


def write_whole(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """``data`` at ``path``, whole or not at all: written to a temporary file beside it
    (every byte: a short write is continued), fsynced and renamed into place. On any
    failure the temporary file is removed and the error raised (ENOSPC on a full disk).
    ``exclusive``: an existing ``path`` is kept (then nothing is written)."""
    tmp = path.with_name(f".{path.name}-{os.getpid()}{_TMP}" if exclusive
                         else f".{path.name}{_TMP}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                if n <= 0:  # a regular file never answers 0 but on no space: say so
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            os.link(tmp, path)  # FileExistsError: another process made it first
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if exclusive:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _record_name(run: Spooled) -> str:
    digest = hashlib.sha256(run.run_id.encode()).hexdigest()[:16]
    return f"{time.time_ns():020d}-{os.getpid()}-{digest}{_SUFFIX}"


def _leftover(tmp: Path) -> bool:
    """A temporary file whose writer died: its pid (in the name) is gone, or it is old."""
    try:
        age = time.time() - tmp.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > TMP_AGE:
        return True
    try:
        pid = int(tmp.name.lstrip(".").split("-")[1].split(".")[0])
    except (IndexError, ValueError):
        return False  # not one of ours: only by age
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _unreadable(path: Path, e: BaseException) -> str:
    """Why a record cannot be read, for its log line."""
    if isinstance(e, OSError):
        return f"cannot be read: {e.strerror or e}"
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    if size == 0:
        return "empty file"
    return f"not a spooled run: {type(e).__name__}: {str(e)[:120]} ({size} bytes)"


def _parse_count(raw: bytes) -> int:
    try:
        return int(raw.strip() or b"0")
    except ValueError:
        return 0
