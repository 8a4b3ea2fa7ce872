"""The embedded broker: kombu's filesystem transport, with each message whole or absent.

kombu's ``filesystem://`` transport (no server, fanout for remote control and Flower's
events, queued messages kept on disk across restarts) creates a message file in the queue
folder and then writes it, so a consumer polling at that moment can claim it empty; its
``JSONDecodeError`` then ends the worker (kombu issue #1551, open upstream). A consumer
also claimed by ``shutil.move`` into the system temp directory, a copy when that is
another filesystem. This transport keeps kombu's folders, names and fanout table and
changes how a file gets in and out:

- put: written under ``broker/tmp`` (same filesystem, a name no consumer looks at),
  fsynced, then renamed into the queue folder: a consumer sees all of it or nothing;
- get: claimed by an atomic rename into the processed folder (one consumer wins), read
  and removed. A file that is empty or does not parse (written by something else, or
  cut short by a crash of the machine) is moved to ``broker/quarantine`` with one
  warning naming it, and the next message is read: never a crash of the worker;
- a fanout table file read while another process is creating it counts as no bindings.

``ksafs://`` names it (``transport_url``); the app uses it for ``filesystem://``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from queue import Empty
from typing import Any

import kombu.transport
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

from kubestack_ai.plugins.logcontext import get_logger

from .settings import Settings

log = get_logger(__name__)

ALIAS = "ksafs"
STALE_TMP = 600.0
"""Seconds after which a file left in broker/tmp or broker/processed (a process died
mid-way) is dealt with when a transport starts (see ``_sweep``)."""

kombu.transport.TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"


def transport_url(settings: Settings) -> str:
    """The URL the app connects with: ours for ``filesystem://``, else the setting's."""
    # a host name only so that kombu does not warn of its absence; the folders are the place
    return f"{ALIAS}://localhost" if settings.broker_is_filesystem else settings.broker_url


class Channel(filesystem.Channel):
    """kombu's filesystem channel with atomic puts and claims, and bad files set aside."""

    _claim_folder_made = False

    @property
    def _broker(self) -> Path:
        return Path(self.data_folder_in).parent

    @property
    def tmp_folder(self) -> Path:
        return Path(self.transport_options.get("tmp_folder") or self._broker / "tmp")

    @property
    def quarantine_folder(self) -> Path:
        return Path(self.transport_options.get("quarantine_folder")
                    or self._broker / "quarantine")

    # (kombu names the second argument "message" in one base class, "payload" in the other)
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{int(round(time.monotonic() * 1000))}_{os.urandom(16).hex()}.{queue}.msg"
        tmp = self.tmp_folder / name
        final = os.path.join(self.data_folder_out, name)
        try:
            self.tmp_folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # as kombu's
            try:
                data = dumps(payload).encode()  # type: ignore[no-untyped-call]
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ChannelError(f"Cannot add a message to {self.data_folder_out}: {exc}") from exc
        except BaseException:  # SystemExit from a SIGTERM handler mid-write: not sent
            tmp.unlink(missing_ok=True)
            raise

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        suffix = f".{queue}.msg"
        claimed_in = Path(self.processed_folder)
        if not self._claim_folder_made:
            # a missing folder would read as "another consumer was first" for every file
            claimed_in.mkdir(parents=True, exist_ok=True)
            self._claim_folder_made = True
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != suffix[1:]:
                continue
            src = os.path.join(self.data_folder_in, name)
            claimed = claimed_in / name
            try:
                os.rename(src, claimed)  # atomic: exactly one consumer gets it
            except FileNotFoundError:
                continue  # another consumer was first
            except OSError as exc:
                raise ChannelError(f"Cannot claim {src}: {exc}") from exc
            try:
                raw = claimed.read_bytes()
                if not self.store_processed:
                    claimed.unlink()
            except FileNotFoundError:
                continue  # swept back to the queue meanwhile (see _sweep): read it there
            except OSError as exc:
                raise ChannelError(f"Cannot read {claimed} from the queue: {exc}") from exc
            if not raw:
                self._set_aside(src, raw, "empty", "0 bytes")
                continue
            try:
                payload = loads(raw.decode())  # type: ignore[no-untyped-call]
            except ValueError as exc:
                self._set_aside(src, raw, "not a message", f"{type(exc).__name__}: {exc}")
                continue
            if isinstance(payload, dict):
                return payload
            self._set_aside(src, raw, "not a message", f"a JSON {type(payload).__name__}")
        raise Empty()

    def _set_aside(self, src: str, raw: bytes, kind: str, detail: str) -> None:
        """Keep a bad message's bytes in the quarantine folder and say so, once."""
        folder = self.quarantine_folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / os.path.basename(src)).write_bytes(raw)
            log.warning("broker: %s: set %s aside in %s (%s)", kind, src, folder, detail)
        except OSError as exc:
            log.warning("broker: %s: dropped %s (%s; cannot keep it in %s: %s)", kind, src,
                        detail, folder, exc)

    def get_table(self, exchange: str) -> Any:
        # a table file another process has created and not yet written: no bindings yet
        # (kombu opens it "wb" before taking the lock, so a reader can lock it empty)
        try:
            if self._exchange_file(exchange).stat().st_size == 0:  # type: ignore[no-untyped-call]
                return []
        except FileNotFoundError:
            return []
        return super().get_table(exchange)  # type: ignore[no-untyped-call]


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)  # type: ignore[no-untyped-call]
        opts = client.transport_options or {}
        data_in = opts.get("data_folder_in")
        if data_in:
            tmp = Path(opts.get("tmp_folder") or Path(data_in).parent / "tmp")
            _sweep(tmp, None)
            if opts.get("processed_folder") and not opts.get("store_processed"):
                _sweep(Path(opts["processed_folder"]), Path(data_in))


def _sweep(folder: Path, back_to: Path | None) -> None:
    """Files older than STALE_TMP in broker/tmp (their writer died before the rename:
    never a message) are removed; in the processed folder (their consumer died between
    its claim and its read) they go back to the queue (``back_to``)."""
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return
    cutoff = time.time() - STALE_TMP
    for p in entries:
        try:
            # ctime: a rename sets it, so a message queued long ago and claimed just now
            # counts from its claim
            if p.stat().st_ctime >= cutoff:
                continue
            if back_to is None:
                p.unlink()
            else:
                os.rename(p, back_to / p.name)
                log.warning("broker: %s was claimed by a consumer that died before reading "
                            "it: back in %s", p.name, back_to)
        except OSError:
            pass
