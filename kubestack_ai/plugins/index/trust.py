"""Reading an index and deciding whether to trust it (TUF's ideas, without its weight).

The rules, in the order they are applied, each a refusal of its own:

1. ``index.json.sig`` exists (an unsigned index is refused);
2. it holds a signature by a pinned key (``$KSA_HOME/trusted_keys/*.pub``,
   ``KSA_INDEX_KEYS``); signatures by other keys are ignored;
3. that signature verifies over the bytes of ``index.json`` as served;
4. the index has not expired (a frozen index, served for ever, is refused);
5. its serial is not below the last serial this machine accepted from that URL (a
   replayed older index is refused), and the same serial means the same bytes;
6. then the serial is remembered (``$KSA_HOME/index-state.json``).

An index is named by a directory path, a ``file://`` URL or an ``http(s)://`` URL (of
the directory holding ``index.json``); artifacts are read relative to it. Reads are
bounded in time and size.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, IndexTrustError
from . import document
from .keys import PublicKey, decode_sig

MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024
TIMEOUT = 15.0


class Source:
    """Where an index lives; reads files relative to it."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urllib.parse.urlsplit(url)
        self.http = parsed.scheme in ("http", "https")
        if parsed.scheme == "file":
            self.base: str = urllib.parse.unquote(parsed.path)
        elif self.http:
            self.base = url if url.endswith("/") else url + "/"
        elif parsed.scheme:
            raise IndexTrustError(f"index {url}: scheme {parsed.scheme!r} not supported "
                                  "(a directory, file:// or http(s)://)")
        else:
            self.base = url

    def read(self, name: str, limit: int, missing_ok: bool = False) -> bytes | None:
        if self.http:
            return self._http(urllib.parse.urljoin(self.base, name), limit, missing_ok)
        path = Path(self.base, name)
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            if missing_ok:
                return None
            raise IndexTrustError(f"index {self.url}: {name} not found") from None
        except OSError as e:
            raise IndexTrustError(f"index {self.url}: {name}: {e.strerror}") from None
        return _bounded(data, limit, self.url, name)

    def _http(self, url: str, limit: int, missing_ok: bool) -> bytes | None:
        import urllib.error  # ~35 ms: only indexes served over HTTP pay for it
        import urllib.request

        req = urllib.request.Request(url, headers={"User-Agent": "ksa-index/1"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
                data = resp.read(limit + 1)
        except urllib.error.HTTPError as e:
            if e.code == 404 and missing_ok:
                return None
            raise IndexTrustError(f"index {self.url}: GET {url}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise IndexTrustError(f"index {self.url}: GET {url}: {reason}") from None
        return _bounded(data, limit, self.url, url)


def _bounded(data: bytes, limit: int, url: str, name: str) -> bytes:
    if len(data) > limit:
        raise IndexTrustError(f"index {url}: {name} is larger than {limit // 2**20} MiB")
    return data


@dataclass
class TrustedIndex:
    url: str
    doc: dict[str, Any]
    source: Source
    keyid: str
    """The pinned key whose signature was accepted."""

    def artifact(self, e: dict[str, Any], plugin_id: str) -> bytes:
        """The artifact's bytes, checked against the size and SHA-256 the index signed."""
        rel = str(e["artifact"])
        if rel.startswith("/") or "://" in rel or ".." in rel.split("/"):
            raise ArtifactError(f"{plugin_id}: artifact {rel!r} is not a path inside the index: "
                                "refused")
        data = self.source.read(rel, MAX_ARTIFACT_BYTES)
        assert data is not None
        digest = hashlib.sha256(data).hexdigest()
        if digest != e["sha256"]:
            raise ArtifactError(
                f"{plugin_id} {e['manifest'].get('version')}: artifact {e['artifact']} has "
                f"SHA-256 {digest[:16]}..., the signed index says {e['sha256'][:16]}...: "
                "tampered or corrupted, refused (nothing installed)")
        return data


def check_signature(raw: bytes, sig_raw: bytes | None, keys: dict[str, PublicKey],
                    url: str) -> str:
    """Rules 1-3; returns the accepted key id."""
    if sig_raw is None:
        raise IndexTrustError(f"index {url} is unsigned (no {document.SIG_FILE}): refused; "
                              "only signed indexes are read")
    try:
        sigs = json.loads(sig_raw)["signatures"]
        pairs = [(str(s["keyid"]), str(s["sig"])) for s in sigs]
    except (ValueError, KeyError, TypeError):
        raise IndexTrustError(f"index {url}: {document.SIG_FILE} is not a signature list: "
                              "refused") from None
    if not keys:
        raise IndexTrustError(f"index {url}: no trusted index key on this machine; pin the "
                              "publisher's .pub in $KSA_HOME/trusted_keys/ or KSA_INDEX_KEYS")
    pinned = [(k, s) for k, s in pairs if k in keys]
    if not pinned:
        names = ", ".join(k for k, _ in pairs) or "none"
        raise IndexTrustError(f"index {url} is signed by unknown key(s) {names}: refused; pin "
                              "the publisher's .pub in $KSA_HOME/trusted_keys/ or "
                              "KSA_INDEX_KEYS to trust it")
    for kid, sig in pinned:
        if keys[kid].verify(decode_sig(sig), raw):
            return kid
    raise IndexTrustError(f"index {url}: the signature by key {pinned[0][0]} does not verify "
                          "(the index was changed after signing): refused")


def check_fresh(doc: dict[str, Any], digest: str, url: str, seen: dict[str, Any],
                now: dt.datetime) -> None:
    """Rules 4-5."""
    expires = document.utc(doc["expires"])
    if now > expires:
        raise IndexTrustError(f"index {url} (serial {doc['serial']}) expired at "
                              f"{doc['expires']}: a frozen index is refused; its publisher "
                              "re-signs it (`ksa index sign`)")
    last = seen.get(url)
    if last is None:
        return
    if doc["serial"] < last["serial"]:
        raise IndexTrustError(
            f"index {url}: serial {doc['serial']} is older than serial {last['serial']} seen "
            "before: a replayed index is refused (if its publisher really started over, "
            f"remove its entry from $KSA_HOME/{STATE_FILE})")
    if doc["serial"] == last["serial"] and digest != last["sha256"]:
        raise IndexTrustError(
            f"index {url}: serial {doc['serial']} was seen before with other content: refused "
            "(a publisher raises the serial with every change; `ksa index sign` does)")


STATE_FILE = "index-state.json"


class SeenSerials:
    """``$KSA_HOME/index-state.json``: the last serial (and digest) accepted per URL."""

    def __init__(self, home: Path) -> None:
        self.path = home / STATE_FILE

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            # fail closed: without it a replay cannot be told from an update
            raise IndexTrustError(f"{self.path} cannot be read ({type(e).__name__}): no index "
                                  "is trusted until it is repaired or removed") from None
        return data if isinstance(data, dict) else {}

    def remember(self, url: str, serial: int, digest: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.load()
            last = data.get(url)
            if last is not None and last["serial"] > serial:
                return  # another process accepted a newer one meanwhile
            data[url] = {"serial": serial, "sha256": digest}
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)


def open_index(url: str, keys: dict[str, PublicKey], seen: SeenSerials,
               now: dt.datetime | None = None) -> TrustedIndex:
    """Read, verify and remember one index (rules 1-6)."""
    src = Source(url)
    raw = src.read(document.INDEX_FILE, MAX_INDEX_BYTES)
    assert raw is not None
    sig = src.read(document.SIG_FILE, 1024 * 1024, missing_ok=True)
    kid = check_signature(raw, sig, keys, url)
    doc = document.parse(raw, url)
    digest = hashlib.sha256(raw).hexdigest()
    known = seen.load()
    check_fresh(doc, digest, url, known, now or dt.datetime.now(dt.UTC))
    if known.get(url) != {"serial": doc["serial"], "sha256": digest}:
        seen.remember(url, doc["serial"], digest)
    return TrustedIndex(url, doc, src, kid)


def check_version_signature(e: dict[str, Any], keys: dict[str, PublicKey], plugin_id: str,
                            version: str) -> None:
    """A version is signed by the key it names, which must be pinned here."""
    kid = str(e.get("key") or "")
    key = keys.get(kid)
    if key is None:
        raise IndexTrustError(f"{plugin_id} {version} is signed by key {kid or '(none)'}, "
                              "which is not pinned here: refused; pin its .pub in "
                              "$KSA_HOME/trusted_keys/ or KSA_INDEX_KEYS to trust it")
    if not key.verify(decode_sig(str(e.get("signature") or "")), document.version_payload(e)):
        raise IndexTrustError(f"{plugin_id} {version}: its signature by key {kid} does not "
                              "verify (the entry was changed after signing): refused")
