"""What ``ksa diagnose`` and ``ksa action`` share: the target's command-line arguments
and the plugin manager that serves its type (builtins first, external plugins when the
type is not a builtin's)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kubestack_ai.ksa.output import CliError

if TYPE_CHECKING:  # the framework (pydantic) is imported when a command runs
    from kubestack_ai.plugins import MiddlewareTarget, PluginManager


def add_target_arguments(p: argparse.ArgumentParser, *, endpoints: str | None = "+",
                         option_flags: tuple[str, ...] = ("--option", "-o")) -> None:
    p.add_argument("type", help="middleware type: redis, kafka, mysql, postgres, tcp, ...")
    p.add_argument("endpoint", nargs=endpoints,
                   help="HOST:PORT (several for sentinel/cluster/kafka"
                        + (")" if endpoints == "+" else ", comma-separated)"))
    p.add_argument("--name", default="", help="target name shown in results (default: "
                                              "its endpoints)")
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
    p.add_argument(*option_flags, dest="option", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="target option (YAML value), e.g. master_name=mymaster")


def pairs(items: list[str], what: str, bad_input: int = 3) -> dict[str, object]:
    """``KEY=VALUE`` arguments, each value read as YAML (``5`` is a number). A value that
    is not YAML is a CliError with exit status ``bad_input`` naming the option, never
    echoing the value."""
    import yaml  # noqa: PLC0415

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--{what} {item!r}: expected KEY=VALUE", bad_input)
        try:
            out[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            # YAML's own wording ("found '\\x00'") helps nobody; the value is not echoed
            # (it may be a secret typed where its reference belongs)
            raise CliError(f"--{what} {key}: the value is not valid YAML (values are read as "
                           f"YAML: 5 is a number, [a, b] a list); quote a string: "
                           f"--{what} \"{key}='...'\"", bad_input) from None
    return out


def target_from_args(args: argparse.Namespace, bad_input: int = 3,
                     **extra: object) -> MiddlewareTarget:
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
    endpoints = args.endpoint if isinstance(args.endpoint, list) else [
        e.strip() for e in args.endpoint.split(",") if e.strip()]
    try:
        return MiddlewareTarget.model_validate({
            "type": args.type, "name": args.name, "endpoints": endpoints, "mode": args.mode,
            "auth": auth, "tls": tls, "options": pairs(args.option, "option", bad_input),
            **extra,
        })
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "target"
        raise CliError(f"invalid target: {where}: {first['msg']}", bad_input) from None


def plugin_modules_configured() -> bool:
    """KSA_PLUGIN_MODULES names modules that may register builtins of their own."""
    from kubestack_ai.workers.settings import Settings  # noqa: PLC0415

    return bool(Settings.from_env().plugin_modules)


def manager_for(args: argparse.Namespace) -> PluginManager:
    """A manager that has the plugin for ``args.type``, or a CliError naming the types."""
    from kubestack_ai.ksa.commands.plugin import load_external_plugins  # noqa: PLC0415
    from kubestack_ai.plugins import PluginManager  # noqa: PLC0415
    from kubestack_ai.plugins.catalogue import BUILTINS  # noqa: PLC0415

    manager = PluginManager()
    builtin = next((pid for pid, b in BUILTINS.items() if b["middleware_type"] == args.type),
                   None)
    if builtin is not None and not plugin_modules_configured():
        # only the plugin this command runs: the other builtins' code (and their
        # imports: ssl, their checks) is not loaded
        manager.load_builtin(builtin)
    if args.type not in manager.registry.middleware_types():
        manager.load_builtins()
    if args.type not in manager.registry.middleware_types():
        load_external_plugins(manager, args)
    if args.type not in manager.registry.middleware_types():
        from kubestack_ai.plugins.pyutil import did_you_mean  # noqa: PLC0415

        types = manager.registry.middleware_types()
        raise CliError(f"unknown middleware type {args.type!r}{did_you_mean(args.type, types)} "
                       f"(known: {', '.join(types)})")
    return manager
