"""``ksa plugin canary|compare|promote``: A/B trial of a plugin version installed from an
index (the logic: plugins/index/canary.py; docs/index.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubestack_ai.ksa import indexcli as ic
from kubestack_ai.ksa.output import CliError, dump_json, table


def register_plugin_actions(psub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ca = psub.add_parser("canary", help="run version V on a stable share of the plugin's "
                                        "targets (or --abort)")
    ca.add_argument("id")
    ca.add_argument("--version", help="the canary version (fetched from the index and "
                                      "verified when it is not installed yet)")
    ca.add_argument("--share", type=float, default=10.0, help="percent of targets (default 10)")
    ca.add_argument("--margin", type=float, default=10.0,
                    help="end the canary itself when its failure rate exceeds the current "
                         "version's by more than this many points (default 10)")
    ca.add_argument("--min-runs", type=int, default=5,
                    help="runs on each side before the margin is judged (default 5)")
    ca.add_argument("--check-seconds", type=float, default=30.0,
                    help="how often each worker child judges it (default 30)")
    ca.add_argument("--abort", action="store_true", help="end the running canary")
    ca.add_argument("--index", action="append", default=[], metavar="URL")
    ca.add_argument("--yes", action="store_true", help="install the version without asking")
    ca.set_defaults(func=cmd_canary)
    co = psub.add_parser("compare", help="the current and the canary version side by side")
    co.add_argument("id")
    co.add_argument("--json", action="store_true", help="print JSON")
    co.set_defaults(func=cmd_compare)
    pr = psub.add_parser("promote", help="make the canary version current everywhere")
    pr.add_argument("id")
    pr.set_defaults(func=cmd_promote)


def _bump(plugin_id: str) -> int | None:
    from kubestack_ai.ksa.store import open_store  # noqa: PLC0415
    from kubestack_ai.storage import StorageError  # noqa: PLC0415

    try:
        store = open_store()
        try:
            return int(store.request_reload(plugin_id))
        finally:
            store.dispose()
    except (StorageError, CliError) as e:
        print(f"ksa: warning: workers not told about {plugin_id}'s canary: {e}", file=sys.stderr)
        return None


def cmd_canary(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import canary, install  # noqa: PLC0415
    from kubestack_ai.plugins.index import installed as inst  # noqa: PLC0415
    from kubestack_ai.plugins.index.scan import render  # noqa: PLC0415

    home, pid = ic.home(), args.id
    try:
        if args.abort:
            state = canary.end(home, pid, "aborted", "ended by ksa plugin canary --abort")
            gen = _bump(pid)
            print(f"{pid}: canary {state['version']} aborted; every target runs "
                  f"{state['current_version']} (generation {gen})")
            return 0
        if not args.version:
            raise CliError("--version V names the canary (or --abort ends one)", 2)
        if not 0 < args.share <= 100:
            raise CliError(f"--share {args.share}: a percentage above 0, at most 100", 2)
        meta = inst.read_meta(home, pid)
        if meta is None:
            raise CliError(f"{pid} was not installed from an index: `ksa plugin install {pid}` "
                           "first", 2)
        cur = meta["current"]
        if args.version == cur:
            raise CliError(f"{pid} {cur} is the current version already", 2)
        if canary.active(canary.read(home, pid)):
            raise CliError(f"{pid}: a canary is running; `ksa plugin promote {pid}` or "
                           f"`ksa plugin canary {pid} --abort` ends it", 1)
        if not inst.version_dir(home, pid, args.version).is_dir():
            from packaging.specifiers import SpecifierSet  # noqa: PLC0415

            keys = ic.keys(home)
            steps = install.plan(ic.indexes(args, home, keys), pid,
                                 SpecifierSet(f"=={args.version}"), ic.have(home), keys, home)
            for s in steps:
                print(f"{s.plugin_id} {s.version} from {s.index.url}: verified")
                for line in render(s.scan):
                    print("  " + line)
            ic.confirm(args.yes)
            install.apply(steps, home, root_current=False)
        state = {"plugin_id": pid, "version": args.version, "current_version": cur,
                 "location": str(inst.version_dir(home, pid, args.version)),
                 "share": args.share, "margin": args.margin / 100, "min_runs": args.min_runs,
                 "check_seconds": args.check_seconds, "started_at": canary.now_iso(),
                 "state": "running"}
        canary.write(home, pid, state)
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    gen = _bump(pid)
    print(f"{pid}: canary {args.version} on {args.share:g}% of its targets (the same ones "
          f"every run), {cur} on the rest; workers switch before their next task "
          f"(generation {gen})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins.errors import PluginIndexError  # noqa: PLC0415
    from kubestack_ai.plugins.index import canary  # noqa: PLC0415
    from kubestack_ai.plugins.index import installed as inst  # noqa: PLC0415

    home, pid = ic.home(), args.id
    try:
        state = canary.read(home, pid)
        if not canary.active(state):
            raise PluginIndexError(f"{pid}: no canary is running to promote")
        assert state is not None
        meta = inst.read_meta(home, pid)
        assert meta is not None
        v = state["version"]
        inst.check_recorded(home, pid, v, "promoted")
        dest = inst.commit(home, pid, v, None, meta["versions"][v])
        canary.end(home, pid, "promoted", "promoted by ksa plugin promote")
    except PluginIndexError as e:
        raise CliError(str(e), 1) from None
    print(f"{pid}: {v} promoted, current on every target (was {state['current_version']})")
    ic.notify_workers(pid, dest)
    return 0


def report(plugin_id: str) -> dict[str, Any]:
    """The comparison of the plugin's last canary, from the stored runs."""
    from kubestack_ai.ksa.store import open_store  # noqa: PLC0415
    from kubestack_ai.plugins.index import canary  # noqa: PLC0415
    from kubestack_ai.storage import StorageError  # noqa: PLC0415

    store = open_store()
    try:
        r = canary.report(ic.home(), plugin_id, lambda since: store.plugin_runs(plugin_id, since))
    except StorageError as e:
        raise CliError(f"storage: {e}", 1) from None
    finally:
        store.dispose()
    if r is None:
        raise CliError(f"{plugin_id}: no canary was run (`ksa plugin canary {plugin_id} "
                       "--version V`)", 2)
    return r


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.1f} ms"


def cmd_compare(args: argparse.Namespace) -> int:
    r = report(args.id)
    if args.json:
        print(dump_json(r))
        return 0
    cur, new = r["current"], r["canary"]
    print(f"{r['plugin_id']}: canary {new['version']} on {r['share']:g}% of targets, "
          f"{r['state']}, since {r['started_at']}"
          + (f" until {r['ended_at']}" if r["ended_at"] else ""))
    if r["reason"]:
        print(f"ended: {r['reason']}")
    rows = [["runs", cur["runs"], new["runs"]],
            ["failures", cur["failures"], new["failures"]],
            ["time-outs", cur["timeouts"], new["timeouts"]],
            ["failure rate", f"{cur['failure_rate']:.0%}", f"{new['failure_rate']:.0%}"],
            ["duration p50", _ms(cur["p50"]), _ms(new["p50"])],
            ["duration p95", _ms(cur["p95"]), _ms(new["p95"])],
            ["statuses", _counts(cur["statuses"]), _counts(new["statuses"])],
            ["targets", cur["targets"], new["targets"]]]
    print(table(["", f"CURRENT {cur['version']}", f"CANARY {new['version']}"], rows))
    for key, ver in (("only_canary", new["version"]), ("only_current", cur["version"])):
        codes = r[key]
        print(f"finding codes only {ver} raises on the same targets: "
              + ("none" if not codes else ""))
        for code, targets in sorted(codes.items()):
            print(f"  {code}  ({', '.join(targets)})")
    return 0


def _counts(d: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"
