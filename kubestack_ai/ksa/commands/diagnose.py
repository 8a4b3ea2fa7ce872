"""``ksa diagnose TYPE ENDPOINT``: one diagnosis, in this process, through the sandbox."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kubestack_ai.ksa.commands.plugin import load_external_plugins
from kubestack_ai.ksa.output import CliError, render_result

if TYPE_CHECKING:  # the framework (pydantic) is imported when the command runs
    from kubestack_ai.plugins import MiddlewareTarget


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("diagnose", help="diagnose one middleware target now",
                       description="Exit status: 0 healthy, 1 warning, 2 critical, "
                                   "3 unknown or error.")
    p.add_argument("type", help="middleware type: redis, kafka, mysql, tcp, ...")
    p.add_argument("endpoint", nargs="+", help="HOST:PORT (several for sentinel/cluster/kafka)")
    p.add_argument("--category", "-c", action="append", default=[],
                   help="only this category (repeatable)")
    p.add_argument("--json", action="store_true", help="print the DiagnosticResult as JSON")
    p.add_argument("--name", default="", help="target name shown in results")
    p.add_argument("--mode", default="standalone", choices=["standalone", "sentinel", "cluster"])
    p.add_argument("--user", help="user name")
    p.add_argument("--password-ref", metavar="REF",
                   help="password as a secret reference: env:NAME or file:/path")
    p.add_argument("--sasl-mechanism", help="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (Kafka)")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--tls-ca", help="CA bundle file")
    p.add_argument("--tls-cert", help="client certificate file")
    p.add_argument("--tls-key", help="client key file")
    p.add_argument("--tls-insecure", action="store_true", help="do not verify the server")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="target option (YAML value), e.g. master_name=mymaster")
    p.add_argument("--threshold", "-t", action="append", default=[], metavar="NAME=NUMBER",
                   help="override a threshold for this target")
    p.add_argument("--timeout", type=float, help="seconds for the whole diagnosis")
    p.set_defaults(func=cmd_diagnose)


def _pairs(items: list[str], what: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--{what} {item!r}: expected KEY=VALUE")
        import yaml  # noqa: PLC0415

        out[key] = yaml.safe_load(value) if value else ""
    return out


def target_from_args(args: argparse.Namespace) -> MiddlewareTarget:
    from pydantic import ValidationError  # noqa: PLC0415

    from kubestack_ai.plugins import MiddlewareTarget  # noqa: PLC0415

    auth = None
    if args.user or args.password_ref or args.sasl_mechanism:
        auth = {"username": args.user, "password": args.password_ref,
                "mechanism": args.sasl_mechanism}
    tls = None
    if args.tls or args.tls_ca or args.tls_cert:
        tls = {"ca_file": args.tls_ca, "cert_file": args.tls_cert, "key_file": args.tls_key,
               "verify": not args.tls_insecure}
    try:
        return MiddlewareTarget.model_validate({
            "type": args.type, "name": args.name, "endpoints": args.endpoint, "mode": args.mode,
            "auth": auth, "tls": tls, "options": _pairs(args.option, "option"),
            "thresholds": _pairs(args.threshold, "threshold"),
        })
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "target"
        raise CliError(f"invalid target: {where}: {first['msg']}") from None


def cmd_diagnose(args: argparse.Namespace) -> int:
    from kubestack_ai.plugins import DiagnoseOptions, PluginManager, Status  # noqa: PLC0415

    target = target_from_args(args)
    manager = PluginManager()
    if args.type not in manager.registry.middleware_types():
        manager.load_builtins()
    if args.type not in manager.registry.middleware_types():
        load_external_plugins(manager, args)
    if args.type not in manager.registry.middleware_types():
        known = ", ".join(manager.registry.middleware_types())
        raise CliError(f"unknown middleware type {args.type!r} (known: {known})")
    result = manager.diagnose(target, DiagnoseOptions(categories=tuple(args.category)),
                              timeout=args.timeout)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(render_result(result))
    if result.status is Status.UNKNOWN or (result.errors and not result.findings
                                           and result.status is Status.HEALTHY):
        return 3
    return result.status.exit_code
