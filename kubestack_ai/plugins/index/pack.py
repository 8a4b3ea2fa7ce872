"""An artifact: a reproducible ``.tar.gz`` of a plugin folder, and its safe unpacking.

Packing skips byte-code caches and hidden files, sorts the members, and zeroes owners
and times, so the same folder always gives the same bytes (and SHA-256). Unpacking
takes regular files and folders only, never an absolute path, ``..``, a link or a
device, bounded in count and size, and writes folders 0755 and files 0644 (the plugin
folder checks refuse anything group- or world-writable). The files found must be exactly
the ones the signed index lists, each with its SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path, PurePosixPath

from ..errors import ArtifactError

MAX_MEMBERS = 2000
MAX_UNPACKED = 256 * 1024 * 1024
SKIP_DIRS = {"__pycache__"}


def plugin_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative posix path, file) of what a plugin folder ships, sorted."""
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            p = Path(dirpath, name)
            if p.is_symlink() or not p.is_file():
                raise ArtifactError(f"{p}: not a regular file (links are not packed)")
            out.append((p.relative_to(folder).as_posix(), p))
    return sorted(out)


def file_hashes(folder: Path) -> dict[str, str]:
    return {rel: hashlib.sha256(p.read_bytes()).hexdigest() for rel, p in plugin_files(folder)}


def pack(folder: Path) -> tuple[bytes, dict[str, str]]:
    """(tar.gz bytes, {path: sha256})."""
    buf = io.BytesIO()
    hashes: dict[str, str] = {}
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, p in plugin_files(folder):
            data = p.read_bytes()
            hashes[rel] = hashlib.sha256(data).hexdigest()
            ti = tarfile.TarInfo(rel)
            ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = len(data), 0o644, 0, 0, 0
            ti.uname = ti.gname = ""
            tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue(), hashes


def read_members(data: bytes, expected: dict[str, str], what: str) -> dict[str, bytes]:
    """The artifact's files, in memory: plain files the signed index lists, nothing else."""
    out: dict[str, bytes] = {}
    total = 0
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
        members = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ArtifactError(f"{what}: the artifact is not a readable tar.gz ({e})") from None
    if len(members) > MAX_MEMBERS:
        raise ArtifactError(f"{what}: the artifact holds more than {MAX_MEMBERS} members")
    with tar:
        for m in members:
            rel = PurePosixPath(m.name)
            if (rel.is_absolute() or ".." in rel.parts or not m.isfile()
                    or rel.as_posix() not in expected or rel.as_posix() in out):
                raise ArtifactError(f"{what}: the artifact holds {m.name!r}, which the signed "
                                    "index does not list (or is not a plain file): refused")
            total += m.size
            if total > MAX_UNPACKED:
                raise ArtifactError(f"{what}: the artifact unpacks to more than "
                                    f"{MAX_UNPACKED // 2**20} MiB")
            f = tar.extractfile(m)
            assert f is not None
            out[rel.as_posix()] = f.read()
    check_files({k: hashlib.sha256(v).hexdigest() for k, v in out.items()}, expected, what)
    return out


def write_folder(members: dict[str, bytes], dest: Path) -> None:
    """Write checked members into the new folder ``dest``: folders 0755, files 0644."""
    dest.mkdir(mode=0o755)
    os.chmod(dest, 0o755)
    for rel, body in members.items():
        target = dest.joinpath(*PurePosixPath(rel).parts)
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(body)
        os.chmod(target, 0o644)
    for d, _, _ in os.walk(dest):
        os.chmod(d, 0o755)  # folders made under a umask that may allow group write


def check_files(have: dict[str, str], expected: dict[str, str], what: str) -> None:
    """The files and hashes of an artifact or an installed folder against the index's."""
    missing = sorted(set(expected) - set(have))
    extra = sorted(set(have) - set(expected))
    changed = sorted(k for k in set(have) & set(expected) if have[k] != expected[k])
    if missing or extra or changed:
        parts = [f"{label}: {', '.join(names[:5])}" for label, names in
                 (("changed", changed), ("missing", missing), ("not in the index", extra))
                 if names]
        raise ArtifactError(f"{what}: files differ from the signed index ({'; '.join(parts)})")
