"""The publisher's side: add a version to an index directory, rate one, sign the index.

An index directory holds ``index.json``, ``index.json.sig``, ``artifacts/`` and, when the
publisher keeps one, ``advisories.json`` (``{"package": [{"id": "CVE-...", "affected":
"<2.0", "summary": "..."}]}``) the scanner checks pinned dependencies against. Every
change raises the serial and sets a new expiry, and the whole index is signed again.
A published version is never changed: adding it again with other content is refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from ..errors import ArtifactError, PluginIndexError
from . import document, wheel
from .keys import SigningKey
from .pack import pack
from .scan import scan_folder

DEFAULT_DAYS = 30


def load(index_dir: Path) -> dict[str, Any]:
    path = index_dir / document.INDEX_FILE
    if not path.exists():
        return document.empty()
    return document.parse(path.read_bytes(), str(index_dir))


def advisories(index_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((index_dir / "advisories.json").read_bytes())
    except FileNotFoundError:
        return {}
    return {k.lower(): v for k, v in data.items()} if isinstance(data, dict) else {}


def save(index_dir: Path, doc: dict[str, Any], key: SigningKey, days: float,
         now: dt.datetime | None = None) -> None:
    """Raise the serial, set the expiry, write and sign (index first, then its signature)."""
    now = now or dt.datetime.now(dt.UTC)
    doc["serial"] += 1
    doc["expires"] = document.iso(now + dt.timedelta(days=days))
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    sig = json.dumps({"signatures": [{"keyid": key.keyid, "sig": key.sign(raw)}]}).encode()
    index_dir.mkdir(parents=True, exist_ok=True)
    for name, data in ((document.INDEX_FILE, raw), (document.SIG_FILE, sig)):
        tmp = index_dir / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, index_dir / name)


def add(index_dir: Path, folder: Path, manifest: dict[str, Any], middleware_type: str | None,
        categories: list[str], key: SigningKey, days: float = DEFAULT_DAYS,
        now: dt.datetime | None = None) -> dict[str, Any]:
    """Pack, scan, record and sign one validated plugin folder; returns its entry."""
    data, files = pack(folder)
    return _record(index_dir, data, f"{manifest['id']}-{manifest['version']}.tar.gz", files,
                   manifest, middleware_type, categories,
                   scan_folder(folder, advisories(index_dir)), {}, key, days, now)


def add_wheel(index_dir: Path, wheel_path: Path, key: SigningKey, days: float = DEFAULT_DAYS,
              now: dt.datetime | None = None, middleware_type: str | None = None,
              categories: list[str] | None = None) -> dict[str, Any]:
    """Read (never import), scan, record and sign an entry-point plugin's wheel
    (plugins/index/wheel.py); returns its entry. The middleware type and categories are
    the publisher's word (the code is not run). Raises PluginIndexError."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+\.whl", wheel_path.name):
        raise ArtifactError(f"{wheel_path}: a wheel's file name is letters, digits and "
                            f"'_.+-', ending in {wheel.SUFFIX}")
    data = wheel_path.read_bytes()
    w = wheel.read_wheel(data, str(wheel_path))
    extra = {"format": "wheel", "wheel": {"name": w.name, "version": w.version,
                                          "entry_point": w.entry_point, "package": w.package}}
    return _record(index_dir, data, wheel_path.name, wheel.file_hashes(w), w.manifest,
                   middleware_type, categories or [], wheel.scan(w, advisories(index_dir)),
                   extra, key, days, now)


def _record(index_dir: Path, data: bytes, name: str, files: dict[str, str],
            manifest: dict[str, Any], middleware_type: str | None, categories: list[str],
            scan: list[dict[str, Any]], extra: dict[str, Any], key: SigningKey, days: float,
            now: dt.datetime | None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    doc = load(index_dir)
    pid, version = manifest["id"], manifest["version"]
    digest = hashlib.sha256(data).hexdigest()
    old = document.entry(doc, pid, version)
    if old is not None and old["sha256"] != digest:
        raise ArtifactError(f"{pid} {version} is already in the index with other content: a "
                            "published version never changes; publish a new version")
    rel = f"artifacts/{name}"
    (index_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    (index_dir / rel).write_bytes(data)
    entry: dict[str, Any] = {
        "artifact": rel, "sha256": digest, "size": len(data), "files": files,
        "manifest": manifest, "requires": list(manifest.get("requires") or ()),
        "middleware_type": middleware_type, "categories": categories,
        "scan": scan, **extra,
        "published": document.iso(now), "key": key.keyid}
    entry["signature"] = key.sign(document.version_payload(entry))
    plug = doc["plugins"].setdefault(pid, {"versions": {}})
    plug["versions"][version] = entry
    save(index_dir, doc, key, days, now)
    return entry


def rate(index_dir: Path, plugin_id: str, version: str, score: int, text: str,
         key: SigningKey, days: float = DEFAULT_DAYS) -> dict[str, Any]:
    """The maintainer's rating and review of one version; the summary is recomputed."""
    if not 1 <= score <= 5:
        raise PluginIndexError(f"--score {score}: a score is 1 to 5")
    doc = load(index_dir)
    if document.entry(doc, plugin_id, version) is None:
        raise PluginIndexError(f"{plugin_id} {version} is not in the index {index_dir}")
    plug = doc["plugins"][plugin_id]
    r = plug.setdefault("ratings", {"score": None, "count": 0, "reviews": []})
    r["reviews"].append({"version": version, "score": score, "text": text,
                         "at": document.iso(dt.datetime.now(dt.UTC))})
    r["count"] = len(r["reviews"])
    r["score"] = round(sum(x["score"] for x in r["reviews"]) / r["count"], 2)
    save(index_dir, doc, key, days)
    return dict(r)
