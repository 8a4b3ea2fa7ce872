"""``ksa index keygen|add|rate|sign`` (publishers) and ``ksa plugin search|install|
outdated|update|verify`` (operators): a signed plugin index, docs/index.md.

The logic lives in ``kubestack_ai.plugins.index``; this module parses, prints, asks, and
tells the workers (through storage's generation) when the current version of a plugin
changed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubestack_ai.ksa import indexcli as ic
from kubestack_ai.ksa.output import CliError, dump_json, table

if TYPE_CHECKING:
    from kubestack_ai.plugins.index.keys import PublicKey
    from kubestack_ai.plugins.index.trust import TrustedIndex


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("index", help="publish plugins to a signed index (keygen, add, rate, "
                                     "sign)")
    isub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    kg = isub.add_parser("keygen", help="make an Ed25519 key pair: NAME.key and NAME.pub")
    kg.add_argument("name", help="path stem of the two files")
    kg.add_argument("--comment", default="", help="a note kept in the .pub line")
    kg.set_defaults(func=cmd_keygen)
    add = isub.add_parser("add", help="validate, scan, pack and publish a plugin folder (or "
                                      "an entry-point plugin's .whl)")
    add.add_argument("plugin_dir", metavar="PLUGIN_DIR|WHEEL")
    rate = isub.add_parser("rate", help="the maintainer's rating and review of a version")
    rate.add_argument("id")
    rate.add_argument("version")
    rate.add_argument("--score", type=int, required=True, help="1 to 5")
    rate.add_argument("--review", default="", help="one line of review")
    sign = isub.add_parser("sign", help="raise the serial, renew the expiry, sign again")
    for cmd in (add, rate, sign):
        cmd.add_argument("--index", required=True, metavar="DIR", help="the index directory")
        cmd.add_argument("--key", required=True, metavar="KEYFILE", help="the .key to sign with")
        cmd.add_argument("--days", type=float, default=30.0,
                         help="the index expires this many days from now (default 30)")
    add.add_argument("--timeout", type=float, default=10.0, help="validation's import and init")
    add.add_argument("--middleware-type", metavar="TYPE",
                     help="a wheel only (its code is not imported): the middleware type it "
                          "diagnoses, as `ksa plugin search` shows it")
    add.add_argument("--category", action="append", default=[], metavar="NAME",
                     help="a wheel only: a category it checks (repeatable)")
    add.set_defaults(func=cmd_add)
    rate.set_defaults(func=cmd_rate)
    sign.set_defaults(func=cmd_sign)


def register_plugin_actions(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The operator's commands, under ``ksa plugin``."""
    se = psub.add_parser("search", help="plugins in the index(es): id, latest, rating, what "
                                        "it diagnoses")
    se.add_argument("term", nargs="?", default="")
    se.add_argument("--json", action="store_true", help="print JSON")
    se.set_defaults(func=cmd_search)
    ins = psub.add_parser("install", help="verify and install ID or ID==VERSION from an index")
    ins.add_argument("wanted", metavar="ID[==VERSION]")
    ins.set_defaults(func=cmd_install)
    out = psub.add_parser("outdated", help="installed plugins with a newer version in an index")
    out.set_defaults(func=cmd_outdated)
    up = psub.add_parser("update", help="install the newest version of ID (or of every "
                                        "outdated plugin)")
    up.add_argument("id", nargs="?")
    up.set_defaults(func=cmd_update)
    ver = psub.add_parser("verify", help="installed files against the index's hashes")
    ver.add_argument("id", nargs="?")
    ver.set_defaults(func=cmd_verify)
    for cmd in (se, ins, out, up, ver):
        cmd.add_argument("--index", action="append", default=[], metavar="URL",
                         help=f"an index (directory, file:// or http(s)://; repeatable or "
                              f"comma-separated; env {ic.INDEX_ENV}); the first that has a "
                              "plugin wins")
    for cmd in (ins, up):
        cmd.add_argument("--yes", action="store_true",
                         help="install without asking (the scan report is still printed)")
    from kubestack_ai.ksa.commands import canary  # noqa: PLC0415

    canary.register_plugin_actions(psub)  # canary, compare, promote


# -- publisher ----------------------------------------------------------------------------

def cmd_keygen(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index.keys import generate  # noqa: PLC0415

    try:
        key, pub, kid = generate(args.name, args.comment)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    print(f"key {kid}: {key} (private: keep it secret) and {pub} (give it to operators: "
          "$KSA_HOME/trusted_keys/)")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import publish  # noqa: PLC0415
    from kubestack_ai.plugins.index.install import MANIFEST_NAMES  # noqa: PLC0415
    from kubestack_ai.plugins.index.scan import render  # noqa: PLC0415
    from kubestack_ai.plugins.manifest import parse_yaml  # noqa: PLC0415
    from kubestack_ai.plugins.validate import validate_plugin  # noqa: PLC0415

    key = ic.signing_key(args.key)
    folder = Path(args.plugin_dir).absolute()
    index_dir = Path(args.index)
    if folder.suffix == ".whl" and folder.is_file():
        return _add_wheel(folder, index_dir, key, args)
    if args.middleware_type or args.category:
        raise CliError("--middleware-type and --category are for a wheel; a plugin folder's "
                       "are read from its code at validation", 2)
    try:
        installed = _requirable(index_dir)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    report = validate_plugin(folder, installed, timeout=args.timeout)
    for p in report.problems:
        print(f"error: {p}", file=sys.stderr)
    if not report.ok or report.info is None or report.manifest is None:
        raise CliError(f"{folder}: {len(report.problems)} problem(s) (`ksa plugin validate` "
                       "shows them): not published", 1)
    name = next(n for n in MANIFEST_NAMES if (folder / n).is_file())
    raw = parse_yaml((folder / name).read_text("utf-8"))
    mtype = report.middleware_type
    try:
        entry = publish.add(index_dir, folder, raw, mtype, list(report.categories), key,
                            args.days)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    for line in render(entry["scan"]):
        print(line)
    print(f"published {raw['id']} {raw['version']} ({entry['size']} bytes, sha256 "
          f"{entry['sha256'][:16]}...) to {index_dir}, signed by key {key.keyid}")
    return 0


def _requirable(index_dir: Path) -> dict[str, str]:
    """What a published plugin's ``requires`` may name: the builtins and what the same
    index publishes (its latest version)."""
    from kubestack_ai.plugins.catalogue import BUILTINS  # noqa: PLC0415
    from kubestack_ai.plugins.index import publish  # noqa: PLC0415
    from kubestack_ai.plugins.index.document import latest  # noqa: PLC0415

    installed = {pid: str(b["info"]["version"]) for pid, b in BUILTINS.items()}
    doc = publish.load(index_dir)
    for pid in doc["plugins"]:
        installed.setdefault(pid, latest(doc, pid) or "0")
    return installed


def _add_wheel(path: Path, index_dir: Path, key: Any, args: argparse.Namespace) -> int:
    """An entry-point plugin's wheel: read as a zip, its manifest checked against its
    metadata and entry point, ``requires`` and the config schema's defaults validated as a
    folder's are (manifest only); its code is scanned, never imported (docs/index.md)."""
    import tempfile  # noqa: PLC0415

    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import publish, wheel  # noqa: PLC0415
    from kubestack_ai.plugins.index.pack import write_folder  # noqa: PLC0415
    from kubestack_ai.plugins.index.scan import render  # noqa: PLC0415
    from kubestack_ai.plugins.validate import validate_plugin  # noqa: PLC0415

    try:
        w = wheel.read_wheel(path.read_bytes(), str(path))
        with tempfile.TemporaryDirectory(prefix="ksa-wheel-") as tmp:
            write_folder(w.members, Path(tmp, w.package))
            report = validate_plugin(Path(tmp, w.package), _requirable(index_dir),
                                     manifest_only=True)
        for p in report.problems:
            print(f"error: {path} ({w.package}/): {p.field}: {p.message}", file=sys.stderr)
        if not report.ok:
            raise CliError(f"{path}: {len(report.problems)} problem(s) in its "
                           f"{w.package}/ manifest: not published", 1)
        entry = publish.add_wheel(index_dir, path, key, args.days,
                                  middleware_type=args.middleware_type,
                                  categories=list(args.category))
    except PluginIndexError as e:
        raise CliError(f"{e} (not published)", 1) from None
    for line in render(entry["scan"]):
        print(line)
    m = entry["manifest"]
    print(f"published {m['id']} {m['version']} (wheel, entry point "
          f"{entry['wheel']['entry_point']}, {entry['size']} bytes, sha256 "
          f"{entry['sha256'][:16]}...) to {index_dir}, signed by key {key.keyid}")
    return 0


def cmd_rate(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import publish  # noqa: PLC0415

    key = ic.signing_key(args.key)
    try:
        r = publish.rate(Path(args.index), args.id, args.version, args.score, args.review, key,
                         args.days)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    print(f"{args.id}: rated {r['score']} over {r['count']} review(s)")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import publish  # noqa: PLC0415

    key = ic.signing_key(args.key)
    try:
        doc = publish.load(Path(args.index))
        publish.save(Path(args.index), doc, key, args.days)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    print(f"{args.index}: serial {doc['serial']}, expires {doc['expires']}, signed by key "
          f"{key.keyid}")
    return 0


# -- operator -----------------------------------------------------------------------------

def cmd_search(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.index.document import search  # noqa: PLC0415

    home = ic.home()
    seen: set[str] = set()
    rows = []
    for ix in ic.indexes(args, home, ic.keys(home)):
        for r in search(ix.doc, args.term):
            if r["id"] not in seen:
                seen.add(r["id"])
                rows.append({**r, "index": ix.url})
    if args.json:
        print(dump_json(rows))
        return 0
    if not rows:
        print(f"no plugin matches {args.term!r}" if args.term else "the index lists no plugin")
        return 0
    print(table(["ID", "LATEST", "RATING", "DIAGNOSES", "DESCRIPTION"],
                [[r["id"], r["version"],
                  f"{r['score']} ({r['ratings']})" if r["score"] is not None else "-",
                  r["middleware_type"] + (": " + ", ".join(r["categories"])
                                          if r["categories"] else ""),
                  r["description"]] for r in rows]))
    return 0


def _install(args: argparse.Namespace, wanted: str, indexes: list[TrustedIndex],
             home: Path, keys: dict[str, PublicKey]) -> None:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import install  # noqa: PLC0415
    from kubestack_ai.plugins.index.resolve import parse_wanted  # noqa: PLC0415
    from kubestack_ai.plugins.index.scan import render  # noqa: PLC0415

    t0 = time.perf_counter()
    try:
        pid, spec = parse_wanted(wanted)
        steps = install.plan(indexes, pid, spec, ic.have(home), keys, home)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    for s in steps:
        state = " (already installed: made current)" if s.present else ""
        print(f"{s.plugin_id} {s.version} from {s.index.url}: signature by key "
              f"{s.entry['key']}, sha256 {s.entry['sha256'][:16]}... verified{state}")
        for line in render(s.scan):
            print("  " + line)
    ic.confirm(args.yes)
    for s, dest in install.apply(steps, home):
        print(f"installed {s.plugin_id} {s.version} in {dest}")
        ic.notify_workers(s.plugin_id, dest)
    print(f"({(time.perf_counter() - t0) * 1000:.0f} ms)", file=sys.stderr)


def cmd_install(args: argparse.Namespace) -> int:
    home = ic.home()
    keys = ic.keys(home)
    _install(args, args.wanted, ic.indexes(args, home, keys), home, keys)
    return 0


def _outdated(indexes: list[TrustedIndex], home: Path) -> list[tuple[str, str, str, str]]:
    from kubestack_ai.plugins.index.document import latest, vkey  # noqa: PLC0415
    from kubestack_ai.plugins.index.installed import installed  # noqa: PLC0415

    out = []
    for pid, cur in installed(home).items():
        for ix in indexes:
            new = latest(ix.doc, pid)
            if new is not None:
                if vkey(new) > vkey(cur):
                    out.append((pid, cur, new, ix.url))
                break
    return out


def cmd_outdated(args: argparse.Namespace) -> int:
    home = ic.home()
    rows = _outdated(ic.indexes(args, home, ic.keys(home)), home)
    if not rows:
        print("every installed plugin is at the index's latest version")
        return 0
    print(table(["ID", "INSTALLED", "LATEST", "INDEX"], rows))
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    home = ic.home()
    keys = ic.keys(home)
    indexes = ic.indexes(args, home, keys)
    rows = [r for r in _outdated(indexes, home) if args.id in (None, r[0])]
    if not rows:
        print(f"{args.id or 'every installed plugin'}: already at the index's latest version")
        return 0
    for pid, _cur, new, _url in rows:
        _install(args, f"{pid}=={new}", indexes, home, keys)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import installed as inst  # noqa: PLC0415
    from kubestack_ai.plugins.index.install import find_in  # noqa: PLC0415
    from kubestack_ai.plugins.index.trust import check_version_signature  # noqa: PLC0415

    home = ic.home()
    keys = ic.keys(home)
    find = find_in(ic.indexes(args, home, keys))
    ids = installed_ids = inst.installed(home)
    if args.id is not None:
        if args.id not in installed_ids:
            raise CliError(f"{args.id} was not installed from an index", 2)
        ids = {args.id: installed_ids[args.id]}
    if not ids:
        print("no plugin here was installed from an index")
        return 0
    failed = 0
    for pid, version in ids.items():
        found = find(pid)
        e = found[1].get(version) if found else None
        try:
            if e is None:
                raise PluginIndexError(f"{pid} {version}: no index lists this version")
            check_version_signature(e, keys, pid, version)
            inst.verify(home, pid, e["files"])
        except PluginIndexError as err:
            failed += 1
            print(f"FAILED: {err}")
            continue
        print(f"ok: {pid} {version} ({len(e['files'])} files match the index)")
    return 1 if failed else 0


def rollback_installed(plugin_id: str) -> bool:
    """``ksa plugin rollback ID`` for a plugin installed from an index: the version
    installed before the current one becomes current here and on every worker. False when
    the plugin was not installed from an index (the caller's rollback applies)."""
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import installed as inst  # noqa: PLC0415

    home = ic.home()
    if inst.read_meta(home, plugin_id) is None:
        return False
    try:
        old, new = inst.rollback(home, plugin_id)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    print(f"{plugin_id}: rolled back {old} -> {new}")
    ic.notify_workers(plugin_id, inst.version_dir(home, plugin_id, new))
    return True
