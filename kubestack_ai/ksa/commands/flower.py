"""``ksa flower``: Flower, the monitor of the workers and tasks, started the way this
project needs it.

- The task list has a result column (Flower's ``tasks_columns``): a task's result starts
  with its one-line verdict (``critical: mysql.connection.auth_failed; 2 more``), so the
  list says what each run found, not only ``SUCCESS``.
- It binds 127.0.0.1. Another address needs basic auth, whose password is a reference
  (``--password-ref env:NAME`` or ``file:/path``, resolved here); Flower gets it in its
  environment (``FLOWER_BASIC_AUTH``), never on a command line others can read.

Flower is ``celery -A kubestack_ai.workers flower`` with these options; this process
becomes it (exec), so Ctrl-C and signals reach Flower itself.
"""

from __future__ import annotations

import argparse
import os
import sys

from kubestack_ai.ksa.output import CliError

TASKS_COLUMNS = "name,uuid,state,result,received,started,runtime,worker"
"""Flower's task list: the result (the verdict first) beside the state."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "flower", help="Flower (workers and tasks), with the verdict in its task list",
        description="Starts Flower on the workers' broker (KSA_BROKER_URL or $KSA_HOME) with "
                    "a result column in its task list. Binds 127.0.0.1; any other address "
                    "needs basic-auth credentials, the password given by reference.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5555, help="port (default 5555)")
    p.add_argument("--user", default=os.environ.get("KSA_FLOWER_USER"),
                   help="basic-auth user (or $KSA_FLOWER_USER)")
    p.add_argument("--password-ref", default=os.environ.get("KSA_FLOWER_PASSWORD_REF"),
                   help="basic-auth password as env:NAME or file:/path "
                        "(or $KSA_FLOWER_PASSWORD_REF)")
    p.set_defaults(func=cmd_flower)


def flower_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """Flower's argv and environment for these arguments (credentials resolved)."""
    from kubestack_ai.web import WebAuth, WebError  # noqa: PLC0415
    from kubestack_ai.web.auth import is_loopback  # noqa: PLC0415

    try:
        auth = WebAuth.from_refs(user=args.user, password_ref=args.password_ref)
    except WebError as e:
        raise CliError(f"flower: {e}", 2) from None
    if not is_loopback(args.host) and not auth.user:
        raise CliError(f"flower: binding {args.host} shows the workers and tasks beyond this "
                       "machine: give basic-auth credentials (--user NAME --password-ref "
                       "env:NAME), or bind 127.0.0.1", 2)
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_BASIC_AUTH"}
    if auth.user:
        env["FLOWER_BASIC_AUTH"] = f"{auth.user}:{auth.password}"
    argv = [sys.executable, "-m", "celery", "-A", "kubestack_ai.workers", "flower",
            f"--address={args.host}", f"--port={args.port}", f"--tasks_columns={TASKS_COLUMNS}"]
    return argv, env


def cmd_flower(args: argparse.Namespace) -> int:
    argv, env = flower_command(args)
    print(f"ksa flower: http://{args.host}:{args.port}/"
          + (" (basic auth)" if "FLOWER_BASIC_AUTH" in env else ""), file=sys.stderr, flush=True)
    os.execve(argv[0], argv, env)
    return 0  # pragma: no cover (exec does not return)
