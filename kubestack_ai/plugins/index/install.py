"""Install from trusted indexes: every check first, in memory; then one rename per version.

For each plugin of the plan (``resolve``): the version's own signature by a pinned key,
the artifact's SHA-256 and file list against the signed index, the manifest in the
artifact against the index's (id, version, every field), and the scan recomputed from
the artifact against the index's report. Only when every plugin of the plan passes, and
the caller has shown the scan reports (and had them accepted), is anything written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet

from ..errors import ArtifactError, ManifestError, ScanMismatchError
from . import installed as inst
from . import wheel
from .keys import PublicKey
from .pack import check_files, file_hashes, read_members, write_folder
from .resolve import Versions, resolve
from .scan import scan_files
from .trust import TrustedIndex, check_version_signature

MANIFEST_NAMES = ("manifest.yaml", "plugin.yaml")


@dataclass
class Step:
    plugin_id: str
    version: str
    index: TrustedIndex
    entry: dict[str, Any]
    members: dict[str, bytes] = field(default_factory=dict)
    scan: list[dict[str, Any]] = field(default_factory=list)
    present: bool = False
    """That version is already installed: it only becomes current."""


def find_in(indexes: Sequence[TrustedIndex]) -> Any:
    """id -> (index, versions) from the first index that lists the plugin."""
    def find(pid: str) -> tuple[TrustedIndex, Versions] | None:
        for ix in indexes:
            p = ix.doc["plugins"].get(pid)
            if p and p.get("versions"):
                return ix, p["versions"]
        return None
    return find


def plan(indexes: Sequence[TrustedIndex], plugin_id: str, spec: SpecifierSet,
         have: dict[str, str], keys: dict[str, PublicKey], home: Path) -> list[Step]:
    """Resolve, then verify every step (nothing written). Raises PluginIndexError."""
    find = find_in(indexes)
    order = resolve(plugin_id, spec, lambda pid: (find(pid) or (None, None))[1], have,
                    lambda pid, v, e: check_version_signature(e, keys, pid, v))
    steps = []
    for pid, version in order:
        found = find(pid)
        assert found is not None
        ix, versions = found
        step = Step(pid, version, ix, versions[version])
        meta = inst.read_meta(home, pid)
        folder = inst.version_dir(home, pid, version)
        # there, and still what the index signed (a changed folder is written again)
        step.present = bool(meta and version in meta.get("versions", {}) and folder.is_dir()
                            and file_hashes(folder) == step.entry["files"])
        verify_step(step, keys)
        steps.append(step)
    return steps


def verify_step(step: Step, keys: dict[str, PublicKey]) -> None:
    e, pid, v = step.entry, step.plugin_id, step.version
    what = f"{pid} {v}"
    check_version_signature(e, keys, pid, v)
    data = step.index.artifact(e, pid)
    adv = _advisories(step.index.source.read("advisories.json", 16 * 1024 * 1024,
                                             missing_ok=True))
    if e.get("format") == "wheel":  # the package folder of an entry-point plugin's wheel
        w = wheel.read_wheel(data, what)
        check_files(wheel.file_hashes(w), e["files"], what)
        step.members = w.members
        check_manifest(step.members, e["manifest"], pid, v)
        step.scan = wheel.scan(w, adv)
    else:
        step.members = read_members(data, e["files"], what)
        check_manifest(step.members, e["manifest"], pid, v)
        step.scan = scan_files(step.members, adv)
    if step.scan != e.get("scan"):
        ours = {(f["rule"], f["file"], f["line"]) for f in step.scan}
        theirs = {(f["rule"], f["file"], f["line"]) for f in e.get("scan") or ()}
        diff = sorted(ours ^ theirs)[:3]
        shown = ", ".join(f"{r} {f}:{ln}" for r, f, ln in diff) or "details differ"
        raise ScanMismatchError(f"{what}: the scan of the artifact differs from the report the "
                                f"index recorded ({shown}): refused (nothing installed)")


def _advisories(raw: bytes | None) -> dict[str, Any]:
    import json

    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {k.lower(): v for k, v in data.items()} if isinstance(data, dict) else {}


def check_manifest(members: dict[str, bytes], indexed: dict[str, Any], pid: str,
                   version: str) -> None:
    from ..manifest import parse_yaml, validate_manifest

    name = next((n for n in MANIFEST_NAMES if n in members), None)
    what = f"{pid} {version}"
    if name is None:
        raise ArtifactError(f"{what}: the artifact has no manifest.yaml or plugin.yaml")
    try:
        raw = parse_yaml(members[name].decode("utf-8"))
        m = validate_manifest(raw, f"{what}:{name}")
    except ManifestError as e:
        raise ArtifactError(f"{what}: its manifest is invalid: {e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ArtifactError(f"{what}: its manifest cannot be read: {e}") from None
    if m.id != pid or m.version != version:
        raise ArtifactError(f"{what}: the artifact's manifest says {m.id} {m.version}: refused")
    if raw != indexed:
        fields = sorted(k for k in set(raw) | set(indexed) if raw.get(k) != indexed.get(k))
        raise ArtifactError(f"{what}: the artifact's manifest differs from the index's in "
                            f"{', '.join(fields)}: refused")


def apply(steps: Sequence[Step], home: Path, root_current: bool = True
          ) -> list[tuple[Step, Path]]:
    """Write each verified version (dependencies first) and make it current (the last,
    the plugin asked for, stays beside the current one when ``root_current`` is False)."""
    done = []
    for i, s in enumerate(steps):
        staged = None
        if not s.present:
            staged = inst.staging(home, s.plugin_id)
            write_folder(s.members, staged)
        record = {"index": s.index.url, "sha256": s.entry["sha256"], "key": s.entry["key"],
                  "files": s.entry["files"]}
        current = root_current or i < len(steps) - 1
        done.append((s, inst.commit(home, s.plugin_id, s.version, staged, record, current)))
    return done
