"""``ksa results [TARGET_KEY] [--audit]``: what the workers stored.

Without a target: the newest run of every target. With one: that target's history,
newest first. ``--audit [TARGET_KEY]``: the log of attempted actions (every target's, or
one target's), newest first. ``--forget TARGET_KEY``: a one-off target (run by hand, not
in the fleet) leaves the view with its history. The database is ``--db URL``,
else ``$KSA_DATABASE_URL``, else the default SQLite file (``$KSA_HOME/ksa.db``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING, Any

from kubestack_ai.ksa.output import CliError, dump_json, one_line, render_result, table
from kubestack_ai.ksa.store import flush_spool

if TYPE_CHECKING:  # storage pulls in SQLAlchemy: imported when the command runs
    from kubestack_ai.storage import AuditRecord, RunRecord


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("results", help="stored results: latest per target, one target's "
                                       "history, or the audit log")
    p.add_argument("target", nargs="?", metavar="TARGET_KEY",
                   help="a target's key (TYPE:NAME, as the first column lists): its history")
    p.add_argument("--audit", action="store_true",
                   help="the audit log of attempted actions (of TARGET_KEY when given)")
    p.add_argument("--limit", "-n", type=int, default=20,
                   help="rows of history or audit log (default 20)")
    p.add_argument("--findings", "-f", action="store_true",
                   help="print each result's findings, not only the table")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--forget", metavar="TARGET_KEY",
                   help="delete a one-off target (not in the fleet): its view row, runs, "
                        "cached results and rollups (the audit log stays)")
    p.add_argument("--db", metavar="URL",
                   help="database URL (default: $KSA_DATABASE_URL, else $KSA_HOME/ksa.db)")
    p.set_defaults(func=cmd_results)


def cmd_results(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError(f"--limit {args.limit}: must be at least 1", 2)
    from kubestack_ai.storage import StorageError, StorageUnavailable, Store

    try:
        store = Store(args.db)
        try:
            store.migrate()
            flush_spool(store)
            if args.forget:
                try:
                    n = store.forget(args.forget)
                except StorageUnavailable:
                    raise
                except StorageError as e:
                    raise CliError(f"--forget: {e}", 2) from None
                print(f"forgot {args.forget}: {n} run(s)")
                return 0
            if args.audit:
                return _audit(store.audit_log(args.limit, args.target), args)
            if args.target:
                runs = store.history(args.target, args.limit)
                if not runs:
                    known = sorted(r.target_key for r in store.latest_results())
                    hint = f"; stored targets: {', '.join(known)}" if known else ""
                    raise CliError(f"no runs stored for target {args.target!r}{hint}", 2)
                return _runs(runs, args, with_target=False)
            return _runs(store.latest_results(), args, with_target=True)
        finally:
            store.dispose()
    except StorageError as e:
        raise CliError(str(e), 3) from None


def _when(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _run_json(r: RunRecord) -> dict[str, Any]:
    return {"run_id": r.run_id, "target_key": r.target_key, "plugin_id": r.plugin_id,
            "status": r.status, "outcome": r.outcome, "started_at": r.started_at.isoformat(),
            "duration": r.duration, "categories": list(r.categories),
            "result": r.result.model_dump(mode="json")}


def _runs(runs: list[RunRecord], args: argparse.Namespace, *, with_target: bool) -> int:
    if args.json:
        print(dump_json([_run_json(r) for r in runs]))
        return 0
    if not runs:
        print("no results stored yet")
        return 0
    headers = ["STARTED (UTC)", "PLUGIN", "STATUS", "OUTCOME", "DURATION", "FINDINGS",
               "CATEGORIES", "RUN"]
    rows = []
    for r in runs:
        row = [_when(r.started_at), r.plugin_id, r.status, r.outcome,
               f"{r.duration * 1000:.1f} ms", _findings(r), ",".join(r.categories) or "all",
               r.run_id]
        rows.append([r.target_key, *row] if with_target else row)
    print(table(["TARGET", *headers] if with_target else headers, rows))
    if args.findings:
        for r in runs:
            print()
            print(render_result(r.result))
    return 0


def _findings(r: RunRecord) -> str:
    counts: dict[str, int] = {}
    for f in r.result.findings:
        counts[str(f.severity)] = counts.get(str(f.severity), 0) + 1
    parts = [f"{counts[s]} {s}" for s in ("critical", "warning", "info") if s in counts]
    return ", ".join(parts) or "-"


def _audit(records: list[AuditRecord], args: argparse.Namespace) -> int:
    if args.json:
        print(dump_json([{"id": a.id, "at": a.at.isoformat(), "who": a.who,
                          "plugin_id": a.plugin_id, "plugin_version": a.plugin_version,
                          "target": a.target, "action": a.action, "params": a.params,
                          "dry_run": a.dry_run, "outcome": a.outcome, "ok": a.ok,
                          "error": a.error, "result": a.result, "duration": a.duration}
                         for a in records]))
        return 0
    if not records:
        print("no actions recorded yet" + (f" for {args.target}" if args.target else ""))
        return 0
    print(table(["AT (UTC)", "WHO", "TARGET", "ACTION", "PARAMS", "OUTCOME", "DURATION",
                 "RESULT / ERROR"],
                [[_when(a.at), a.who or "-", a.target,
                  a.action + (" (dry run)" if a.dry_run else ""),
                  _params(a.params), a.outcome,
                  f"{a.duration * 1000:.1f} ms",
                  one_line(a.error if a.error else a.result, 80)] for a in records]))
    return 0


def _params(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k != "dry_run"}  # the ACTION column says it
    return one_line(shown, 40) if shown else "-"
