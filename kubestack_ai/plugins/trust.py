"""Who may change a plugin's code before it runs: only the user running ``ksa`` (or the
worker), or root.

A plugin folder is code this process will import. A file in it that another user can
write, or a folder where another user can add or rename files, lets that user run code
as us (ssh refuses a key file on the same grounds). So before a manifest is read, and
before any code is imported, every path of the plugin is checked:

1. group- or world-writable (``mode & 0o022``): refused, fix ``chmod go-w PATH``;
2. owned by another user than the effective one, root excepted: refused, fix ``chown``;
3. a symbolic link whose target is outside the plugin's folder: refused (what it points
   to is not the plugin's to vouch for); a link within the folder is followed and its
   target is checked as any other file.

The paths are the plugins directory that was scanned, the plugin's folder and everything
under it (``__pycache__`` included: a writable bytecode cache is code too); for a manifest
lying directly in a plugins directory (``my-plugin.yaml`` beside ``my_plugin.py``), that
manifest, the entry module (file or package) and the directory's ``__pycache__``.
Entry points (installed distributions) are site-packages' business, not checked here.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import Problem, UnsafePluginError

FIELD = "permissions"


def path_problem(path: Path, st: os.stat_result | None = None) -> str | None:
    """Why ``path`` (its mode and owner) cannot be trusted, or None."""
    try:
        st = st or os.stat(path)
    except OSError as e:
        return f"{path} cannot be read: {e.strerror or e}"
    writable = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH))
                if st.st_mode & bit]
    if writable:
        return f"{path} is writable by {' and '.join(writable)}: run `chmod go-w {path}`"
    euid = os.geteuid()
    if st.st_uid not in (euid, 0):
        return (f"{path} is owned by uid {st.st_uid}, not by uid {euid} (who runs ksa) nor "
                f"root: run `chown {euid} {path}`")
    return None


def _walk(top: Path) -> Iterator[Path]:
    """``top`` and every path under it, without following links."""
    yield top
    if not top.is_dir():
        return
    for base, dirs, files in os.walk(top):
        for name in sorted(dirs + files):
            yield Path(base, name)


def tree_problems(paths: Iterable[Path], folder: Path) -> list[str]:
    """The problems of ``paths`` (each walked), links judged against ``folder``."""
    real_folder = os.path.realpath(folder)
    found: list[str] = []
    for top in paths:
        for p in _walk(top):
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            except OSError as e:
                found.append(f"{p} cannot be read: {e.strerror or e}")
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.path.realpath(p)
                if os.path.commonpath([real_folder, target]) != real_folder:
                    found.append(f"{p} is a symbolic link to {target}, outside the plugin's "
                                 f"folder {folder}: copy the file into the folder")
                    continue
                why = path_problem(p)  # the link's target, within the folder
            else:
                why = path_problem(p, st)
            if why is not None:
                found.append(why)
    return found


def check_directory(directory: Path) -> None:
    """A plugins directory: where others may add a plugin, none is trusted."""
    why = path_problem(directory)
    if why is not None:
        raise UnsafePluginError(directory, [Problem(str(directory), FIELD, why)])


def check_folder(manifest_path: Path, root: Path, plugin_id: str = "") -> None:
    """A plugin with its own folder ``root``: the folder and everything in it."""
    _raise(manifest_path, tree_problems([root], root), plugin_id)


def check_flat(manifest_path: Path, root: Path, module: str | None = None,
               plugin_id: str = "") -> None:
    """A manifest lying in the plugins directory ``root``: it, then (``module`` known from
    the manifest) its entry module, file or package, and the directory's bytecode cache."""
    paths = [manifest_path]
    if module:
        paths += [root / f"{module}.py", root / module, root / "__pycache__"]
    _raise(manifest_path, tree_problems([p for p in paths if os.path.lexists(p)], root),
           plugin_id)


def check_plugin(manifest_path: Path, root: Path, module: str | None,
                 plugin_id: str = "") -> None:
    """Either layout: its own folder, or a manifest lying in the plugins directory."""
    if manifest_path.parent == root and manifest_path.name not in ("manifest.yaml",
                                                                   "plugin.yaml"):
        check_flat(manifest_path, root, module, plugin_id)
    else:
        check_folder(manifest_path, root, plugin_id)


def _raise(manifest_path: Path, found: list[str], plugin_id: str) -> None:
    if found:
        raise UnsafePluginError(manifest_path, [Problem(str(manifest_path), FIELD, why)
                                                for why in found], plugin_id)
