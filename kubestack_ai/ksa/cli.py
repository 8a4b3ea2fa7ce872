"""``ksa``: argument parsing and dispatch. Each command group lives in ksa/commands/."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from kubestack_ai.ksa.commands import COMMANDS
from kubestack_ai.ksa.commands.plugin import add_plugin_dir_option
from kubestack_ai.ksa.output import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ksa", description="KubeStack AI: diagnose Redis, Kafka and MySQL fleets.")
    parser.add_argument("--log-level", default="warning",
                        choices=["debug", "info", "warning", "error"],
                        help="log verbosity on stderr (default: warning)")
    add_plugin_dir_option(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from kubestack_ai.plugins.redaction import install_log_redaction  # noqa: PLC0415 (--help stays framework-free)

    install_log_redaction()
    try:
        return int(args.func(args))
    except CliError as e:
        print(f"ksa: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader (`| head`) went away: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
