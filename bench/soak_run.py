"""Soak: ``ksa run`` on the embedded broker with a short-interval fleet, for minutes.

    .venv/bin/python bench/soak_run.py [--minutes 10] [--interval 1] [--concurrency 2]
                                       [--mix tcp=10,redis=6,mysql=4]

A benchmark script, not a test (it takes >= 10 minutes by default). It starts
``ksa run`` (worker, beat and web view; filesystem broker and SQLite under a fresh
$KSA_HOME) on a fleet of ``--mix`` targets (default 20: the tcp plugin on the local
Redis and MariaDB ports, and the redis and mysql plugins on them, each on several
names) at ``--interval`` seconds, lets it run, stops it with SIGTERM and checks:

- ``ksa run`` was up the whole time and exited 0; no process of it exited on its own
  (no ``ksa run: ... exited`` line), no ``Unrecoverable error`` in its log;
- every scheduled run was stored once: a sitecustomize in the run's processes logs each
  task message put on the broker (the ids beat sent); the worker's log (``--verbose``)
  names each task it received and each it discarded as expired (it waited in the queue
  longer than its interval: worker capacity, not the broker). Every message sent was
  received or is still queued at the stop (none lost), every received one is stored
  once or expired, nothing is stored that was not received. Slots (one per interval
  per target from its first run) that beat skipped because it reached them more than an
  interval late (load) are shown as the difference to the messages sent, as are the
  gaps between a target's consecutive runs;
- the broker's folders: nothing quarantined, nothing left in tmp/ or processed/.

Needs the machine's Redis on 6379 and MariaDB on 3306 (root, no password), as the tests.
Exit status 0 when every check holds.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._util import free_port  # noqa: E402

ENDPOINTS = {"tcp": ["127.0.0.1:6379", "127.0.0.1:3306"], "redis": ["127.0.0.1:6379"],
             "mysql": ["127.0.0.1:3306"]}


def fleet_yaml(mix: dict[str, int], interval: float) -> str:
    lines = [f"defaults: {{interval: {interval:g}, health_interval: 0}}", "targets:"]
    for kind, n in mix.items():
        for i in range(n):
            ep = ENDPOINTS[kind][i % len(ENDPOINTS[kind])]
            auth = ", auth: {username: root}" if kind == "mysql" else ""
            lines.append(f"  - {{name: soak-{kind}-{i}, type: {kind}, endpoints: ['{ep}']{auth}}}")
    return "\n".join(lines) + "\n"


TRACE = """\
# bench/soak_run.py: every task message put on the embedded broker, one line each
import os
from kubestack_ai.workers import fsbroker

_put = fsbroker.Channel._put
_log = os.path.join(os.environ["KSA_HOME"], "puts.log")


def _traced(self, queue, payload, **kwargs):
    _put(self, queue, payload, **kwargs)
    h = payload.get("headers") or {}
    if h.get("task"):
        fd = os.open(_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{h['id']} {h['task']}\\n".encode())
        os.close(fd)


fsbroker.Channel._put = _traced
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--mix", default="tcp=10,redis=6,mysql=4",
                    help="targets per plugin type (default: 20 targets)")
    ap.add_argument("--home", default=None, help="$KSA_HOME (default: a fresh temp dir)")
    ap.add_argument("--warmup", type=float, default=60.0,
                    help="seconds from the start not counted in missed slots (default 60)")
    a = ap.parse_args()
    mix = {k: int(v) for k, v in (p.split("=") for p in a.mix.split(","))}
    home = Path(a.home or tempfile.mkdtemp(prefix="ksa-soak-"))
    home.mkdir(parents=True, exist_ok=True)
    fleet = home / "fleet.yaml"
    fleet.write_text(fleet_yaml(mix, a.interval))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KSA_")}
    env.update({"KSA_HOME": str(home), "KSA_CACHE_TTL": "0"})
    # a sitecustomize in every process of the run logs each task message put on the broker
    # (the id beat sent), so that a message lost between beat and the worker shows
    trace = home / "trace"
    trace.mkdir(exist_ok=True)
    (trace / "sitecustomize.py").write_text(TRACE)
    env["PYTHONPATH"] = os.pathsep.join([str(trace), str(ROOT), env.get("PYTHONPATH", "")])
    out, err = open(home / "run.out", "wb"), open(home / "run.err", "wb")  # noqa: SIM115
    n_targets = sum(mix.values())
    print(f"soak: ksa run, {n_targets} targets ({a.mix}) every {a.interval:g} s, "
          f"{a.minutes:g} min, -c {a.concurrency}; KSA_HOME={home}", flush=True)
    t0 = time.time()
    # --verbose: the worker logs each task it received, and each it discarded as expired
    proc = subprocess.Popen([sys.executable, "-m", "kubestack_ai.ksa", "run", "--verbose",
                             "--fleet", str(fleet), "-c", str(a.concurrency), "--web-port",
                             str(free_port())], env=env, cwd=str(ROOT), stdout=out, stderr=err)
    end = t0 + a.minutes * 60
    alive = True
    while time.time() < end:
        time.sleep(min(30.0, max(0.0, end - time.time())))
        lines = (home / "run.out").read_bytes().count(b"\n")
        alive = proc.poll() is None
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"  {time.time() - t0:6.0f} s: {lines} run lines, ksa run "
              f"{'up' if alive else f'EXITED {proc.returncode}'}, load average {load}",
              flush=True)
        if not alive:
            break
    t_stop = time.time()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    out.close()
    err.close()
    return report(home, mix, a.interval, t0, t_stop, rc, alive, a.warmup)


def report(home: Path, mix: dict[str, int], interval: float, t0: float, t_stop: float,
           rc: int, alive: bool, warmup: float) -> int:
    from kubestack_ai.storage import Store

    store = Store(f"sqlite:///{home}/ksa.db")
    keys = [f"{kind}:soak-{kind}-{i}" for kind, n in mix.items() for i in range(n)]
    stored = missed = missed_warm = 0
    run_ids: collections.Counter[str] = collections.Counter()
    outcomes: collections.Counter[str] = collections.Counter()
    worst_gap = 0.0
    per_type: dict[str, list[float]] = collections.defaultdict(list)
    firsts: list[float] = []
    for key in keys:
        runs = sorted(store.history(key, limit=1_000_000), key=lambda r: r.started_at)
        stored += len(runs)
        for r in runs:
            run_ids[r.run_id] += 1
            outcomes[r.outcome] += 1
            per_type[key.split(":")[0]].append(r.duration)
        times = [r.started_at.timestamp() for r in runs]
        if times:
            firsts.append(times[0] - t0)
        for a_, b in zip(times, times[1:], strict=False):
            gap = b - a_
            worst_gap = max(worst_gap, gap)
            missed += max(0, round(gap / interval) - 1)
            if a_ - t0 >= warmup:
                missed_warm += max(0, round(gap / interval) - 1)
    store.dispose()
    dupes = sum(1 for c in run_ids.values() if c > 1)
    err = (home / "run.err").read_text(errors="replace")
    received = set(re.findall(r"\[([0-9a-f-]{36})\] received", err))
    expired = set(re.findall(r"Discarding revoked task: \S+\[([0-9a-f-]{36})\]", err))
    stored_ids = set(run_ids)
    never = received - stored_ids - expired  # received, neither stored nor expired
    puts = home / "puts.log"
    sent = {ln.split()[0] for ln in puts.read_text().splitlines()} if puts.exists() else set()
    queued = set()  # sent, still in the queue when the run was stopped
    for f in (home / "broker" / "queue").glob("*.msg"):
        try:
            queued.add(json.loads(f.read_bytes())["headers"]["id"])
        except (ValueError, KeyError, TypeError):
            pass
    lost = sent - received - queued
    unseen = stored_ids - received  # stored without the worker saying it received it
    exits = [ln for ln in err.splitlines() if "ksa run:" in ln and " exited (" in ln]
    broker = home / "broker"

    def count(sub: str) -> int:
        d = broker / sub
        return len(list(d.iterdir())) if d.is_dir() else 0

    span = t_stop - t0
    ideal = sum(max(0.0, span - f) for f in firsts) / interval
    print(f"\nran {span:.0f} s; ksa run exit status {rc}; stored {stored} runs "
          f"({stored / span:.1f}/s) of ~{ideal:.0f} slots after each target's first run "
          f"({stored / ideal:.1%})" if ideal else "no runs stored")
    print(f"missed slots (gaps between consecutive runs of a target): {missed}; "
          f"longest gap {worst_gap:.2f} s; run ids stored twice: {dupes}")
    print(f"worker received {len(received)} messages: {len(expired)} discarded as expired "
          f"(queued longer than their interval), {len(never)} neither stored nor expired; "
          f"missed slots after the first {warmup:g} s: {missed_warm}; stored but not seen "
          f"received: {len(unseen)}")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    for kind, ds in per_type.items():
        ds.sort()
        print(f"  {kind}: {len(ds)} runs, median {ds[len(ds) // 2] * 1000:.1f} ms, "
              f"p99 {ds[int(len(ds) * 0.99)] * 1000:.1f} ms")
    print(f"process exits under ksa run: {len(exits)}; 'Unrecoverable error' lines: "
          f"{err.count('Unrecoverable error')}; broker quarantine {count('quarantine')}, "
          f"tmp {count('tmp')}, processed {count('processed')}, queue {count('queue')}")
    for ln in exits[:5]:
        print("  " + ln)
    # every slot's message reached the worker (received ~ slots, to one slot per target at
    # each end of the window) and was stored once or discarded as expired. An expired
    # message waited in the queue longer than its interval: worker capacity (on the 2
    # shared cores), not the broker; counted and shown, not a failure
    print(f"beat put {len(sent)} task messages on the broker for ~{ideal:.0f} slots (a slot "
          f"beat reached more than an interval late is skipped: load); the worker received "
          f"{len(received)}, {len(queued)} were still queued at the stop, lost: {len(lost)}")
    ok = (alive and rc == 0 and not exits and "Unrecoverable error" not in err and dupes == 0
          and not never and not unseen and not lost and sent
          and count("quarantine") == count("tmp") == count("processed") == 0 and stored > 0)
    print("soak: OK" if ok else "soak: FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
