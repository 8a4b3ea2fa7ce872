"""``ksa run --fleet FILE``: a worker and beat on this machine."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubestack_ai.ksa.output import CliError
from kubestack_ai.ksa.store import open_store


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
    p.add_argument("--loglevel", default="info", help="worker/beat log level (default info)")
    p.set_defaults(func=cmd_run)




def cmd_run(args: argparse.Namespace) -> int:
    from kubestack_ai.scheduler import FleetError, load_fleet  # noqa: PLC0415
    from kubestack_ai.workers.settings import Settings, mask_url  # noqa: PLC0415

    fleet_path = Path(args.fleet).resolve()
    try:
        fleet = load_fleet(fleet_path)
    except FleetError as e:
        raise CliError(str(e), 2) from None
    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    open_store()  # create the schema once, before several processes race for it
    env = {**os.environ, "KSA_FLEET": str(fleet_path), "KSA_HOME": str(settings.home)}
    base = [sys.executable, "-m", "celery", "-A", "kubestack_ai.workers"]
    cmds = [base + ["worker", "--loglevel", args.loglevel, "-c", str(args.concurrency),
                    "-n", f"ksa-{os.getpid()}@%h"]]
    if not args.no_beat:
        cmds.append(base + ["beat", "--loglevel", args.loglevel])
    print(f"ksa run: {len(fleet.targets)} targets from {fleet_path}; broker "
          f"{mask_url(settings.broker_url)}; storage "
          f"{mask_url(settings.database_url or str(settings.home / 'ksa.db'))}",
          file=sys.stderr)
    procs = [(c[5], subprocess.Popen(c, env=env)) for c in cmds]
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rc = 0
    try:
        while not stopping:
            for what, p in procs:
                if p.poll() is not None:
                    rc = p.returncode or 1
                    print(f"ksa run: {what} exited with {p.returncode}", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return rc
