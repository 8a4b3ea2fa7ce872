"""``ksa run --fleet FILE``: a worker and beat on this machine."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from kubestack_ai.ksa.output import CliError
from kubestack_ai.ksa.runlines import RunLines
from kubestack_ai.ksa.store import open_store_when_up
from kubestack_ai.ksa.supervise import Supervisor


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "run", help="diagnose a fleet on schedule: a worker and beat on this machine",
        description="Starts a Celery worker and beat for the fleet file. By default on "
                    "SQLite and kombu's filesystem:// transport under $KSA_HOME (no server); "
                    "KSA_BROKER_URL=redis://... and KSA_DATABASE_URL=... put the same on a "
                    "shared broker and database for many machines.")
    p.add_argument("--fleet", required=True, help="fleet YAML file (see examples/fleet.yaml)")
    p.add_argument("--concurrency", "-c", type=int, default=2, help="worker children (default 2)")
    p.add_argument("--no-beat", action="store_true", help="only a worker (beat runs elsewhere)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="worker and beat log every task (INFO); by default one line per "
                        "completed run")
    p.add_argument("--loglevel", default=None,
                   help="worker/beat log level (default warning, info with --verbose)")
    p.add_argument("--no-web", action="store_true", help="do not start the web view")
    p.add_argument("--web-host", default="127.0.0.1",
                   help="web view address (default 127.0.0.1; another needs credentials, "
                        "see ksa serve)")
    p.add_argument("--web-port", type=int, default=8080, help="web view port (default 8080)")
    p.set_defaults(func=cmd_run)


def _web_cmd(args: argparse.Namespace) -> list[str] | None:
    """``ksa serve`` for this run, or None (turned off, or its port taken: a warning)."""
    if args.no_web:
        return None
    from kubestack_ai.web.server import port_free  # noqa: PLC0415

    if not port_free(args.web_host, args.web_port):
        print(f"ksa run: warning: web view not started: {args.web_host}:{args.web_port} is in "
              "use (choose another with --web-port, or --no-web); the fleet runs without it",
              file=sys.stderr, flush=True)
        return None
    return [sys.executable, "-m", "kubestack_ai.ksa", "serve", "--host", args.web_host,
            "--port", str(args.web_port)]


def cmd_run(args: argparse.Namespace) -> int:
    from kubestack_ai.scheduler import FleetError, load_fleet  # noqa: PLC0415
    from kubestack_ai.workers.catalog import discover  # noqa: PLC0415
    from kubestack_ai.workers.settings import Settings, mask_url  # noqa: PLC0415

    fleet_path = Path(args.fleet).resolve()
    settings = Settings.from_env()
    # the targets' types and categories checked against the plugins the workers will have
    known = {t: s.categories for t, s in discover(settings.plugin_modules,
                                                  settings.environ).items()}
    try:
        fleet = load_fleet(fleet_path, known)
    except FleetError as e:
        raise CliError(str(e), 2) from None
    settings.home.mkdir(parents=True, exist_ok=True)
    # create the schema once, before several processes race for it; storage down: start
    # anyway (the workers spool the runs), migrated and the spool written when it is back
    store = open_store_when_up("ksa run")
    env = {**os.environ, "KSA_FLEET": str(fleet_path), "KSA_HOME": str(settings.home)}
    base = [sys.executable, "-m", "celery", "-A", "kubestack_ai.workers",
            *([] if args.verbose else ["--quiet"])]  # no banners unless asked
    loglevel = args.loglevel or ("info" if args.verbose else "warning")
    cmds = [base + ["worker", "--loglevel", loglevel, "-c", str(args.concurrency),
                    "-n", f"ksa-{os.getpid()}@%h"]]
    if not args.no_beat:
        cmds.append(base + ["beat", "--loglevel", loglevel])
    print(f"ksa run: {len(fleet.targets)} targets from {fleet_path}; broker "
          f"{mask_url(settings.broker_url)}; storage "
          f"{mask_url(settings.database_url or str(settings.home / 'ksa.db'))}",
          file=sys.stderr, flush=True)
    web_cmd = _web_cmd(args)
    # the processes' own output goes to stderr: stdout has the run lines only
    sup = Supervisor(env, stdout=sys.stderr)
    if web_cmd is not None:
        sup.start("web view", web_cmd)
        print(f"ksa run: web view on http://{args.web_host}:{args.web_port}/ "
              "(fleet, targets, /api/targets, /metrics)", file=sys.stderr, flush=True)
    for c in cmds:
        sup.start(c[c.index("--loglevel") - 1], c)
    lines = RunLines(store)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        # only Ctrl-C or SIGTERM ends the run: a process that exits is started again
        while not stopping:
            sup.poll()
            for line in lines.poll():
                print(line, flush=True)
            time.sleep(0.5)
    finally:
        sup.stop()
    return 0
