"""``ksa action TYPE HOST:PORT ACTION``: run one whitelisted action now, audited.

The same path as the ``action.<type>`` task (``PluginManager.execute``): declared by the
plugin, dangerous ones only when ``--allow NAME`` names them, parameters checked against
the action's schema, the plugin's time limits. The attempt is written to the audit log
(``ksa results --audit``) before anything is sent; when it cannot be written the action
is not run, unless ``--no-audit`` says so explicitly.

Exit status: 0 done (or dry run), 1 the action failed, 2 refused or bad input.
"""

from __future__ import annotations

import argparse
import getpass
import json
import socket
import sys
from typing import TYPE_CHECKING, Any

from kubestack_ai.ksa.commands import plugin_state
from kubestack_ai.ksa.output import CliError, dump_json
from kubestack_ai.ksa.targets import add_target_arguments, manager_for, pairs, target_from_args

if TYPE_CHECKING:  # the framework (pydantic) is imported when the command runs
    from kubestack_ai.plugins.execution import ActionResult

EXIT = {"succeeded": 0, "failed": 1, "refused": 2}
BAD_INPUT = 2


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "action", help="run one whitelisted action on a target (audited)",
        description="Run an action a plugin declares (`ksa plugin info ID` lists them). "
                    "Dangerous actions run only when --allow names them. Every attempt is "
                    "written to the audit log (`ksa results --audit`). Exit status: 0 done, "
                    "1 failed, 2 refused or bad input.")
    add_target_arguments(p, endpoints=None, option_flags=("--target-option",))
    p.add_argument("action", help="the action, e.g. kill_idle_clients")
    p.add_argument("-o", "--param", action="append", default=[], metavar="KEY=VALUE",
                   help="action parameter (YAML value), e.g. min_idle_seconds=300")
    p.add_argument("--allow", action="append", default=[], metavar="ACTION",
                   help="allow this dangerous action by name (repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="say what the action would do on this target, do nothing")
    p.add_argument("--no-audit", action="store_true",
                   help="run even when the audit log cannot be written (nothing is recorded)")
    p.add_argument("--json", action="store_true", help="print the audit record as JSON")
    p.add_argument("--db", metavar="URL",
                   help="audit database URL (default: $KSA_DATABASE_URL, else $KSA_HOME/ksa.db)")
    p.set_defaults(func=cmd_action)


def who() -> str:
    """The operator, as the audit log names them: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER (containers)
        user = "?"
    return f"{user}@{socket.gethostname()}"


def _audit_sink(args: argparse.Namespace) -> Any:
    if args.no_audit:
        print("ksa: warning: --no-audit: this action is not recorded in the audit log",
              file=sys.stderr)
        return None
    from kubestack_ai.ksa.store import open_store  # noqa: PLC0415
    from kubestack_ai.storage import AuditLog  # noqa: PLC0415

    try:
        return AuditLog(open_store(args.db))
    except CliError as e:  # fail closed: no audit log, no action
        raise CliError(f"the audit log cannot be written ({e}); {args.action} not run "
                       "(--no-audit runs it without a record)", 2) from None


def cmd_action(args: argparse.Namespace) -> int:
    target = target_from_args(args, BAD_INPUT)
    params = pairs(args.param, "param", BAD_INPUT)
    manager = manager_for(args)
    sink = _audit_sink(args)
    refusal = plugin_state.disabled_refusal(manager.registry.middleware_plugin_id(args.type))
    try:
        if refusal is not None:  # refused like a worker refuses it, and audited
            out = refused(manager, target, args, refusal, sink)
        else:
            out = _isolated(manager, target, args, params, sink) or manager.execute(
                target, args.action, params, allow=args.allow, dry_run=args.dry_run,
                who=who(), audit=sink)
    finally:
        if sink is not None:
            sink.store.dispose()
        manager.stop_all()
    rec = out.record
    assert rec is not None
    if args.json:
        print(dump_json({**rec.model_dump(mode="json"), "audit_id": out.audit_handle,
                         "audit_error": out.audit_error}))
    else:
        print(render_action(rec, out.audit_handle))
    if out.audit_error is not None:
        print(f"ksa: warning: audit log: {out.audit_error}", file=sys.stderr)
    return EXIT.get(rec.outcome, 1)


def _isolated(manager: Any, target: Any, args: argparse.Namespace, params: dict[str, Any],
              sink: Any) -> ActionResult | None:
    """The action in the plugin's host when the plugin is isolated (docs/isolation.md)."""
    from kubestack_ai.plugins.execution import ActionResult
    from kubestack_ai.plugins.isolation import HostPool, IsolationRefused, isolated, ref_of

    entry = manager.registry.entry(manager.registry.middleware_plugin_id(args.type))
    try:
        if not isolated(entry.info.id, entry.config, entry.source == "builtin"):
            return None
    except IsolationRefused as e:
        raise CliError(str(e), 2) from None
    pool = HostPool(1)
    try:
        rec, handle, audit_error = pool.execute(
            ref_of(entry), entry.config, None, target, args.action, params,
            allow=tuple(args.allow), dry_run=args.dry_run, who=who(), audit=sink)
    finally:
        pool.close()
    out = ActionResult(entry.info.id, f"execute {args.action}", record=rec)
    out.audit_handle, out.audit_error = handle, audit_error
    return out


def refused(manager: Any, target: Any, args: argparse.Namespace, why: str,
            sink: Any) -> ActionResult:
    from kubestack_ai.plugins.execution import ActionRecord, ActionResult, redact
    from kubestack_ai.plugins.models import utcnow

    entry = manager.registry.entry(manager.registry.middleware_plugin_id(args.type))
    rec = ActionRecord(at=utcnow(), who=who(), plugin_id=entry.info.id,
                       plugin_version=entry.info.version, target=target.key,
                       endpoints=target.endpoints, action=args.action,
                       params=redact(pairs(args.param, "param")), dry_run=args.dry_run,
                       outcome="refused", error=why)
    out = ActionResult(entry.info.id, f"execute {args.action}", record=rec)
    if sink is not None:
        try:
            out.audit_handle = sink.begin(rec)
        except Exception as e:  # refused anyway
            out.audit_error = f"{type(e).__name__}: {e}"
    return out


def render_action(rec: Any, audit_id: Any) -> str:
    what = f"{rec.action} (dry run)" if rec.dry_run else rec.action
    audit = f"audit #{audit_id}" if audit_id is not None else "not audited"
    head = (f"{rec.target}: {what} {rec.outcome.upper()}  ({rec.plugin_id} "
            f"{rec.plugin_version}, {rec.duration * 1000:.1f} ms, {audit})")
    lines = [head]
    if rec.error:
        lines.append(f"  error: {rec.error}")
        if "allow it by name" in rec.error:
            lines.append(f"  to run it anyway: --allow {rec.action}")
    if isinstance(rec.result, dict):
        for k, v in rec.result.items():
            if k == "dry_run":
                continue
            text = v if isinstance(v, str) else json.dumps(v, default=str)
            lines.append(f"  {k}: {text}")
    elif rec.result is not None:
        lines.append(f"  result: {json.dumps(rec.result, default=str)}")
    return "\n".join(lines)
