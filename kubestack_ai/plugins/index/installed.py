"""Plugins installed from an index, side by side by version::

    $KSA_HOME/plugins/
    ├── ID/
    │   ├── 1.0.0/              the plugin folder as the artifact held it (0755 / 0644)
    │   ├── 1.1.0/
    │   └── installed.json      the current version, the install history, and for each
    │                           version the index, key and file hashes it was verified by
    └── .current/ID -> ../ID/1.1.0    what discovery loads (a plugin directory)

The current version is switched by replacing the ``.current/ID`` link in one rename, so
that a reader sees the old version or the new one, never half of each. A rollback goes
back to the version installed before the current one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import PluginIndexError
from .pack import check_files, file_hashes

META = "installed.json"
CURRENT = ".current"


def plugins_root(home: Path) -> Path:
    return home / "plugins"


def current_dir(home: Path) -> Path:
    """The plugin directory discovery reads (one link per installed plugin)."""
    return plugins_root(home) / CURRENT


def version_dir(home: Path, plugin_id: str, version: str) -> Path:
    return plugins_root(home) / plugin_id / version


def _mkdir(p: Path) -> None:
    p.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chmod(p, 0o755)


def read_meta(home: Path, plugin_id: str) -> dict[str, Any] | None:
    try:
        data = json.loads((plugins_root(home) / plugin_id / META).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise PluginIndexError(f"{plugin_id}: {META} cannot be read ({type(e).__name__})") \
            from None
    return data if isinstance(data, dict) else None


def _write_meta(home: Path, plugin_id: str, meta: dict[str, Any]) -> None:
    path = plugins_root(home) / plugin_id / META
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def installed(home: Path) -> dict[str, str]:
    """id -> current version of every plugin installed from an index."""
    out: dict[str, str] = {}
    root = plugins_root(home)
    if not root.is_dir():
        return out
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        meta = read_meta(home, child.name)
        if meta and meta.get("current"):
            out[child.name] = meta["current"]
    return out


def staging(home: Path, plugin_id: str) -> Path:
    """A fresh folder name beside the versions (same file system: the move is a rename)."""
    parent = plugins_root(home) / plugin_id
    _mkdir(plugins_root(home))
    _mkdir(parent)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=parent)) / "plugin"


@contextlib.contextmanager
def _locked(home: Path, plugin_id: str) -> Iterator[None]:
    """One change of a plugin's versions at a time (two installs at once)."""
    folder = plugins_root(home) / plugin_id
    _mkdir(plugins_root(home))
    _mkdir(folder)
    with open(folder / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def commit(home: Path, plugin_id: str, version: str, staged: Path | None,
           record: dict[str, Any], current: bool = True) -> Path:
    """Move a verified, unpacked version into place (kept if already there) and make it
    current (unless ``current`` is False: a canary's version waits beside). Returns its
    folder."""
    with _locked(home, plugin_id):
        return _commit(home, plugin_id, version, staged, record, current)


def _commit(home: Path, plugin_id: str, version: str, staged: Path | None,
            record: dict[str, Any], current: bool) -> Path:
    dest = version_dir(home, plugin_id, version)
    if staged is not None:
        if dest.exists() and file_hashes(dest) == record["files"]:
            shutil.rmtree(staged.parent)  # the same files are there already
        else:
            if dest.exists():  # a folder that is not what the index signed: replaced
                os.rename(dest, staged.parent / "old")
            os.rename(staged, dest)
            shutil.rmtree(staged.parent)
    meta = read_meta(home, plugin_id) or {"history": [], "versions": {}}
    meta["versions"][version] = record
    if not current:
        _write_meta(home, plugin_id, meta)
        return dest
    meta["history"] = [v for v in meta["history"] if v != version] + [version]
    meta["current"] = version
    _write_meta(home, plugin_id, meta)
    _point(home, plugin_id, version)
    return dest


def _point(home: Path, plugin_id: str, version: str) -> None:
    cur = current_dir(home)
    _mkdir(cur)
    link = cur / plugin_id
    tmp = cur / f".{plugin_id}.{os.getpid()}.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(f"../{plugin_id}/{version}", tmp)
    os.replace(tmp, link)


def rollback(home: Path, plugin_id: str) -> tuple[str, str]:
    """Make the version installed before the current one current; (old, new)."""
    if read_meta(home, plugin_id) is None:
        raise PluginIndexError(f"{plugin_id} was not installed from an index")
    with _locked(home, plugin_id):
        return _rollback(home, plugin_id)


def _rollback(home: Path, plugin_id: str) -> tuple[str, str]:
    meta = read_meta(home, plugin_id)
    assert meta is not None
    history = meta["history"]
    if len(history) < 2:
        raise PluginIndexError(f"{plugin_id}: no earlier installed version to roll back to "
                               f"({meta['current']} is the only one)")
    prev = history[-2]
    _check_recorded(home, plugin_id, prev, meta, "rolled back")
    old = history.pop()
    meta["current"] = history[-1]
    _write_meta(home, plugin_id, meta)
    _point(home, plugin_id, history[-1])
    return old, history[-1]


def _check_recorded(home: Path, plugin_id: str, version: str, meta: dict[str, Any],
                    what: str) -> None:
    """A version's folder against the hashes it was verified by at install."""
    folder = version_dir(home, plugin_id, version)
    try:
        check_files(file_hashes(folder), meta["versions"][version]["files"],
                    f"{plugin_id} {version} ({folder})")
    except PluginIndexError as e:
        raise PluginIndexError(f"{e}: not {what}; `ksa plugin install {plugin_id}=={version}` "
                               "writes it again") from None


def check_recorded(home: Path, plugin_id: str, version: str, what: str) -> None:
    meta = read_meta(home, plugin_id)
    if meta is None or version not in meta["versions"]:
        raise PluginIndexError(f"{plugin_id} {version} was not installed from an index")
    _check_recorded(home, plugin_id, version, meta, what)


def verify(home: Path, plugin_id: str, expected: dict[str, str]) -> None:
    """The current version's files against ``expected`` (the index's hashes)."""
    meta = read_meta(home, plugin_id)
    if meta is None:
        raise PluginIndexError(f"{plugin_id} was not installed from an index")
    v = meta["current"]
    check_files(file_hashes(version_dir(home, plugin_id, v)), expected,
                f"{plugin_id} {v} ({version_dir(home, plugin_id, v)})")
