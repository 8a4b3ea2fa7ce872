"""``ksa diagnose TYPE ENDPOINT``: one diagnosis, in this process, through the sandbox.

The run is stored in the local store ($KSA_DATABASE_URL, else $KSA_HOME/ksa.db) as
``ksa run``'s workers store theirs, and the earlier runs of the target are its history:
counters are judged as rates across CLI runs too, and ``ksa results`` lists them.
``--no-store`` skips the store (no history read, nothing written)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from kubestack_ai.ksa.commands import plugin_state
from kubestack_ai.ksa.output import CliError, render_result
from kubestack_ai.ksa.store import CliHistory
from kubestack_ai.ksa.targets import add_target_arguments, manager_for, pairs, target_from_args

if TYPE_CHECKING:
    from kubestack_ai.plugins import DiagnosticResult

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("diagnose", help="diagnose one middleware target now",
                       description="Exit status: 0 healthy, 1 warning, 2 critical, "
                                   "3 unknown or error.")
    add_target_arguments(p)
    p.add_argument("--category", "-c", action="append", default=[],
                   help="only this category (repeatable)")
    p.add_argument("--json", action="store_true", help="print the DiagnosticResult as JSON")
    p.add_argument("--threshold", "-t", action="append", default=[], metavar="NAME=NUMBER",
                   help="override a threshold for this target")
    p.add_argument("--timeout", type=float, help="seconds for the whole diagnosis")
    p.add_argument("--no-store", action="store_true",
                   help="neither read the target's history nor store this run")
    p.add_argument("--force", action="store_true",
                   help="run even when the plugin is disabled (`ksa plugin disable`); logged")
    p.set_defaults(func=cmd_diagnose)


def cmd_diagnose(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins import DiagnoseOptions, Status  # noqa: PLC0415

    target = target_from_args(args, thresholds=pairs(args.threshold, "threshold"))
    manager = manager_for(args)
    plugin_id = manager.registry.middleware_plugin_id(args.type)
    refusal = plugin_state.disabled_refusal(plugin_id)
    if refusal is not None:
        if not args.force:
            raise CliError(f"{refusal}; --force runs it anyway", 3)
        log.warning("%s on %s: diagnosed although disabled (--force)", plugin_id, target.key)
        print(f"ksa: warning: {refusal}; running it anyway (--force)", file=sys.stderr)
    history = None if args.no_store else CliHistory(target, plugin_id, named=bool(args.name))
    cats = tuple(args.category)
    snaps = history.snapshots() if history is not None else ()
    options = DiagnoseOptions(categories=cats, history=snaps)
    result = _isolated(manager, plugin_id, target, options, args.timeout)
    if result is None:
        result = manager.diagnose(target, options, timeout=args.timeout)
    if history is not None:
        history.record(cats, result)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render_result(result))
    if result.status is Status.UNKNOWN or (result.errors and not result.findings
                                           and result.status is Status.HEALTHY):
        return 3
    return result.status.exit_code


def _isolated(manager: Any, plugin_id: str, target: Any, options: Any,
              timeout: float | None) -> DiagnosticResult | None:
    """The run in a plugin host when the plugin is isolated (docs/isolation.md), else None."""
    from kubestack_ai.plugins.isolation import (  # noqa: PLC0415
        HostPool,
        IsolationRefused,
        isolated,
        ref_of,
    )

    entry = manager.registry.entry(plugin_id)
    config, builtin = entry.config, entry.source == "builtin"
    try:
        if not isolated(plugin_id, config, builtin):
            return None
    except IsolationRefused as e:
        raise CliError(str(e), 3) from None
    pool = HostPool(1)
    try:
        return pool.run("diagnose", ref_of(entry), config, None, target, options, timeout)
    finally:
        pool.close()
