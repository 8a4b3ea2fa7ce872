"""A wheel artifact: an entry-point plugin's ``.whl``, read as a zip, never imported or run.

The wheel must hold one top-level package and its ``*.dist-info`` (no ``.data``, no other
module), declare exactly one entry point in the loader's group (``kubestack_ai.plugins``,
``ID = package.module:Class``) and ship a ``plugin.yaml`` (or ``manifest.yaml``) at the
top of the package whose id is the entry point's name, whose version is the wheel's, and
whose ``entry`` is the entry point relative to the package (``module:Class``). Every
member must match the wheel's own RECORD (SHA-256).

What gets installed is the package folder alone (its files, relative to the package):
the same layout as a plugin folder, so the directory discovery, the loader (which imports
it under an alias, its modules importing each other relatively) and the isolation host
(which sees only that folder) serve it unchanged; ``files`` in the index are those
files, ``sha256`` the whole wheel's. No pip, no setup code, no import.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import PurePosixPath
from typing import Any

from ..discovery import ENTRY_POINT_GROUP, MANIFEST_NAMES
from ..errors import ArtifactError, ManifestError
from .pack import MAX_MEMBERS, MAX_UNPACKED, SKIP_DIRS
from .scan import scan_files, scan_requires_dist

SUFFIX = ".whl"


@dataclass
class Wheel:
    name: str
    version: str
    plugin_id: str
    entry_point: str
    """``package.module:Class`` as the wheel declares it."""
    package: str
    members: dict[str, bytes] = field(default_factory=dict)
    """The package's files, relative to the package folder (what is installed)."""
    metadata_file: str = ""
    metadata: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)


def _record_hash(value: str) -> str | None:
    algo, _, b64 = value.partition("=")
    if algo != "sha256" or not b64:
        return None
    return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()


def _entry_points(text: str) -> list[tuple[str, str]]:
    """``name = value`` pairs of the loader's group in entry_points.txt (an INI file)."""
    out: list[tuple[str, str]] = []
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
        elif group == ENTRY_POINT_GROUP and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def read_wheel(data: bytes, what: str) -> Wheel:
    """Every check of a wheel's bytes; raises ArtifactError naming the rule."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ArtifactError(f"{what}: not a readable wheel (zip): {e}") from None
    if len(infos) > MAX_MEMBERS:
        raise ArtifactError(f"{what}: the wheel holds more than {MAX_MEMBERS} members")
    files: dict[str, bytes] = {}
    total = 0
    with zf:
        for info in infos:
            rel = PurePosixPath(info.filename)
            if info.is_dir():
                continue
            if rel.is_absolute() or ".." in rel.parts or info.filename in files \
                    or (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ArtifactError(f"{what}: the wheel holds {info.filename!r} (an absolute "
                                    "path, '..', a link or a duplicate): refused")
            total += info.file_size
            if total > MAX_UNPACKED:
                raise ArtifactError(f"{what}: the wheel unpacks to more than "
                                    f"{MAX_UNPACKED // 2**20} MiB")
            files[info.filename] = zf.read(info)
    infos_dirs = {PurePosixPath(n).parts[0] for n in files}
    dist = [d for d in infos_dirs if d.endswith(".dist-info")]
    if len(dist) != 1:
        raise ArtifactError(f"{what}: a wheel has exactly one *.dist-info folder "
                            f"(found {len(dist)})")
    di = dist[0]
    _check_record(files, di, what)
    meta_text = files.get(f"{di}/METADATA", b"").decode("utf-8", errors="replace")
    meta = HeaderParser().parsestr(meta_text)
    name, version = meta.get("Name"), meta.get("Version")
    if not name or not version:
        raise ArtifactError(f"{what}: {di}/METADATA has no Name or Version")
    eps = _entry_points(files.get(f"{di}/entry_points.txt", b"").decode("utf-8", "replace"))
    if len(eps) != 1:
        raise ArtifactError(f"{what}: the wheel declares {len(eps)} entry points in "
                            f"[{ENTRY_POINT_GROUP}] ({di}/entry_points.txt); one plugin per "
                            "wheel is published")
    pid, value = eps[0]
    module, _, attr = value.partition(":")
    parts = module.split(".")
    if not attr or len(parts) < 2 or not all(p.isidentifier() for p in parts):
        raise ArtifactError(f"{what}: entry point {pid} = {value!r} must name a module inside "
                            "a package (package.module:Class)")
    package = parts[0]
    others = sorted(infos_dirs - {di, package})
    if others:
        raise ArtifactError(f"{what}: the wheel holds {', '.join(others[:3])} beside the "
                            f"package {package!r} and {di}: only the plugin's package is "
                            "installed, so nothing else may ship (.data, scripts, modules)")
    members = {n[len(package) + 1:]: b for n, b in files.items()
               if n.startswith(package + "/")}
    hidden = sorted(n for n in members if n.endswith((".pyc", ".pyo")) or any(
        part.startswith(".") or part in SKIP_DIRS for part in PurePosixPath(n).parts))
    if hidden:
        raise ArtifactError(f"{what}: the wheel's package holds {', '.join(hidden[:3])}: "
                            "byte-code and hidden files are not published (the scanner "
                            "cannot read them); build the wheel without them")
    w = Wheel(name, version, pid, value, package, members, f"{di}/METADATA", meta_text)
    w.manifest = _manifest(w, ".".join(parts[1:]) + ":" + attr, what)
    return w


def _check_record(files: dict[str, bytes], di: str, what: str) -> None:
    raw = files.get(f"{di}/RECORD")
    if raw is None:
        raise ArtifactError(f"{what}: the wheel has no {di}/RECORD")
    listed: dict[str, str | None] = {}
    for line in raw.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            path, h, _ = (line.rsplit(",", 2) + ["", ""])[:3]
            listed[path] = _record_hash(h) if h else None
    for path, body in files.items():
        if path == f"{di}/RECORD":
            continue
        if path not in listed or listed[path] != hashlib.sha256(body).hexdigest():
            raise ArtifactError(f"{what}: {path} does not match the wheel's RECORD "
                                "(missing or another SHA-256): refused")


def _manifest(w: Wheel, relative_entry: str, what: str) -> dict[str, Any]:
    from packaging.version import InvalidVersion, Version

    from ..manifest import parse_yaml, validate_manifest

    name = next((n for n in MANIFEST_NAMES if n in w.members), None)
    if name is None:
        raise ArtifactError(f"{what}: the wheel's package {w.package!r} has no plugin.yaml (or "
                            "manifest.yaml) at its top: add one (id, name, version, entry)")
    where = f"{w.package}/{name}"
    try:
        raw = parse_yaml(w.members[name].decode("utf-8"))
        m = validate_manifest(raw, where)
    except ManifestError as e:
        raise ArtifactError(f"{what}: its manifest is invalid: {e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ArtifactError(f"{what}: {where} cannot be read: {e}") from None
    problems = []
    if m.id != w.plugin_id:
        problems.append(f"id {m.id!r}, the entry point is named {w.plugin_id!r}")
    try:
        same = Version(m.version) == Version(w.version)
    except InvalidVersion:
        same = False
    if not same:
        problems.append(f"version {m.version}, the wheel's METADATA {w.version}")
    if m.entry != relative_entry:
        problems.append(f"entry {m.entry!r}, the entry point {w.entry_point!r} relative to "
                        f"its package is {relative_entry!r} (set entry: {relative_entry})")
    if problems:
        raise ArtifactError(f"{what}: {where} says {'; '.join(problems)}: refused")
    return raw if isinstance(raw, dict) else {}


def file_hashes(w: Wheel) -> dict[str, str]:
    return {rel: hashlib.sha256(b).hexdigest() for rel, b in sorted(w.members.items())}


def scan(w: Wheel, advisories: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The package's code (as a plugin folder's) and the METADATA's pinned Requires-Dist
    against the index's advisories."""
    found = scan_files(w.members, advisories) + scan_requires_dist(w.metadata, w.metadata_file,
                                                                   advisories or {})
    return sorted(found, key=lambda f: (f["file"], f["line"], f["rule"], f["detail"]))
