"""The index document: one JSON file, ``index.json``, signed beside it (``index.json.sig``).

    {"format": "ksa-plugin-index/1", "serial": 7, "expires": "2027-01-06T00:00:00Z",
     "plugins": {"ID": {
        "versions": {"1.2.0": {
            "artifact": "artifacts/ID-1.2.0.tar.gz", "sha256": "...", "size": 5120,
            "files": {"plugin.py": "<sha256>", ...},   # what the tarball holds
            "manifest": {...}, "requires": ["other >= 1.0"],
            "middleware_type": "redis", "categories": ["memory", ...],
            "scan": [{"rule": "process", "file": "plugin.py", "line": 3, "detail": "..."}],
            "published": "...", "key": "KEYID", "signature": "BASE64"}},
            # a wheel (plugins/index/wheel.py) also has "format": "wheel" and "wheel":
            # {"name", "version", "entry_point", "package"}; "files" are its package's
        "ratings": {"score": 4.5, "count": 2,
                    "reviews": [{"version": "1.2.0", "score": 5, "text": "...", "at": "..."}]}}}}

The index file is signed whole (its bytes as served); each version is also signed on its
own by the key it names (``key``), over :func:`version_payload`, so that several
publishers can share one index and an operator sees which key vouched for what.
Plain dicts, not models: ``ksa plugin search`` reads 1,000 plugins within its budget.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from packaging.version import InvalidVersion, Version

from ..errors import IndexTrustError

FORMAT = "ksa-plugin-index/1"
INDEX_FILE = "index.json"
SIG_FILE = "index.json.sig"


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def version_payload(entry: dict[str, Any]) -> bytes:
    """What a version's own signature covers: the entry without its signature."""
    return canonical({k: v for k, v in entry.items() if k != "signature"})


def utc(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def empty(serial: int = 0) -> dict[str, Any]:
    return {"format": FORMAT, "serial": serial, "expires": iso(dt.datetime.now(dt.UTC)),
            "plugins": {}}


def parse(raw: bytes, where: str) -> dict[str, Any]:
    """The document's outer shape; refused with one line when it is not an index."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise IndexTrustError(f"index {where}: not JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IndexTrustError(f"index {where}: not a plugin index (format {FORMAT} expected)")
    if not isinstance(doc.get("serial"), int) or not isinstance(doc.get("plugins"), dict):
        raise IndexTrustError(f"index {where}: serial or plugins missing")
    try:
        utc(str(doc.get("expires")))
    except ValueError:
        raise IndexTrustError(f"index {where}: expires is not an ISO time") from None
    return doc


def vkey(v: str) -> Version:
    try:
        return Version(v)
    except InvalidVersion:
        return Version("0.0.0.dev0")


def versions(doc: dict[str, Any], plugin_id: str) -> list[str]:
    """The plugin's versions in the index, oldest first."""
    p = doc["plugins"].get(plugin_id)
    return sorted(p["versions"], key=vkey) if p else []


def latest(doc: dict[str, Any], plugin_id: str) -> str | None:
    """The newest release (a pre-release only when there is nothing else)."""
    vs = versions(doc, plugin_id)
    final = [v for v in vs if not vkey(v).is_prerelease]
    pick = final or vs
    return pick[-1] if pick else None


def entry(doc: dict[str, Any], plugin_id: str, version: str) -> dict[str, Any] | None:
    p = doc["plugins"].get(plugin_id)
    return p["versions"].get(version) if p else None


def search(doc: dict[str, Any], term: str = "") -> Iterator[dict[str, Any]]:
    """Rows for ``ksa plugin search``: id, latest version, rating, description, what it
    diagnoses; ``term`` matched (case-insensitive) against id, name, description,
    middleware type and categories."""
    t = term.lower()
    for pid in sorted(doc["plugins"]):
        v = latest(doc, pid)
        if v is None:
            continue
        e = doc["plugins"][pid]["versions"][v]
        m = e.get("manifest") or {}
        diagnoses = [e.get("middleware_type") or "-", *e.get("categories", ())]
        hay = " ".join([pid, m.get("name", ""), m.get("description", ""), *diagnoses]).lower()
        if t and t not in hay:
            continue
        r = doc["plugins"][pid].get("ratings") or {}
        yield {"id": pid, "version": v, "score": r.get("score"), "ratings": r.get("count", 0),
               "description": m.get("description", ""), "middleware_type": diagnoses[0],
               "categories": diagnoses[1:]}
