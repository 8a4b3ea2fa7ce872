"""What the index commands share: $KSA_HOME, the pinned keys, the trusted indexes, what
is installed, the confirmation, and telling the workers (ksa plugin install/update/
rollback/canary/promote, ksa index)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubestack_ai.ksa.output import CliError

if TYPE_CHECKING:
    from kubestack_ai.plugins.index.keys import PublicKey
    from kubestack_ai.plugins.index.trust import TrustedIndex

INDEX_ENV = "KSA_INDEX"
KEYS_ENV = "KSA_INDEX_KEYS"


def home() -> Path:
    from kubestack_ai.workers.settings import Settings  # noqa: PLC0415

    return Settings.from_env().home


def keys(home: Path) -> dict[str, PublicKey]:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index.keys import trusted_keys  # noqa: PLC0415

    try:
        return trusted_keys(home, os.environ.get(KEYS_ENV, ""))
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None


def urls(args: argparse.Namespace) -> list[str]:
    raw = list(args.index) or [os.environ.get(INDEX_ENV, "")]
    urls = [u.strip() for item in raw for u in item.split(",") if u.strip()]
    if not urls:
        raise CliError(f"no plugin index named: --index URL or {INDEX_ENV}", 2)
    return urls


def indexes(args: argparse.Namespace, home: Path,
             keys: dict[str, PublicKey]) -> list[TrustedIndex]:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index.trust import SeenSerials, open_index  # noqa: PLC0415

    seen = SeenSerials(home)
    try:
        return [open_index(u, keys, seen) for u in urls(args)]
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None


def signing_key(path: str) -> Any:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index.keys import load_signing_key  # noqa: PLC0415

    try:
        return load_signing_key(path)
    except PluginIndexError as e:
        raise CliError(str(e), 2) from None


def have(home: Path) -> dict[str, str]:
    """What requirements can be met by here: the builtins, the plugin folders' manifests
    (KSA_PLUGIN_PATH, /etc/kubestack-ai/plugins; read, not run) and the versions
    installed from an index (current ones)."""
    from kubestack_ai.plugins.catalogue import BUILTINS  # noqa: PLC0415
    from kubestack_ai.plugins.discovery import (  # noqa: PLC0415
        any_external,
        discover_plugins,
        plugin_dirs,
    )
    from kubestack_ai.plugins.index.installed import current_dir, installed  # noqa: PLC0415

    have = {pid: str(b["info"]["version"]) for pid, b in BUILTINS.items()}
    dirs = [d for d in plugin_dirs() if d != current_dir(home).absolute()]
    if any_external(dirs, entry_points=False):
        for d in dirs:
            for found in discover_plugins(d).found:
                if found.manifest is not None:
                    have.setdefault(found.name, found.manifest.version)
    have.update(installed(home))
    return have


def notify_workers(plugin_id: str, location: Path) -> None:
    """Workers load ``location`` from their next task (generation bumped in storage); a
    run in progress finishes on the version it started with. Without any store here no
    worker ever ran here: one started later reads the current version's folder."""
    from kubestack_ai.workers.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    db = settings.home / "ksa.db"
    gen: int | None = None
    if not settings.database_url:
        if not db.exists():
            return
        from kubestack_ai.storage.sqlite_write import record_reload  # noqa: PLC0415

        gen = record_reload(db, plugin_id, str(location))
    if gen is None:
        from kubestack_ai.ksa.store import open_store  # noqa: PLC0415
        from kubestack_ai.storage import StorageError  # noqa: PLC0415

        try:
            store = open_store()
            try:
                gen = store.record_reload(plugin_id, str(location)).generation
            finally:
                store.dispose()
        except (StorageError, CliError) as e:
            print(f"ksa: warning: workers not told about {plugin_id}: {e}", file=sys.stderr)
            return
    print(f"{plugin_id}: workers load {location} before their next task (generation {gen})")


def confirm(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("not installed: confirm with --yes (no terminal to ask on)", 1)
    if input("install? [y/N] ").strip().lower() not in ("y", "yes"):
        raise CliError("not installed: declined", 1)
