"""FleetScheduler: Celery beat's schedule from the fleet, re-read while beat runs.

``celery -A kubestack_ai.workers beat`` uses it (the app sets ``beat_scheduler``). The
fleet named by KSA_FLEET (or ``--fleet`` on ``ksa run``; a file or a ``fleet.d``
directory of them) is checked on every tick (at most every ``beat_max_loop_interval`` =
5 s); a target added, changed or removed takes effect without restarting beat. Times
are UTC. A beat schedules only while it holds the beat lock (see scheduler/lock.py); a
second beat waits as a standby.

Why not Celery's own tick: it keeps a ``ScheduleEntry`` per task, sends one entry per
tick, and compares (and copies) the whole schedule on every tick to notice changes, so
its cost per send grows with the fleet (43 sends/s at 10,000 targets here). This one
keeps a heap of due times (a tick costs O(log n) per send, nothing per idle target),
small ``Job`` records instead of entries, and publishes every due job of a tick on
one producer in a pipelined batch (kombu's ``Producer.batch``; one round trip per
batch on Redis). It publishes without subscribing to each task's result (beat never
reads them; ``send_task`` on a Redis result backend subscribes per task).

The beat that holds the lock declares the fleet to storage (``Store.set_fleet``: its
targets, intervals and endpoints) whenever it reads a changed fleet: the web view,
``/metrics`` and the notifier show the fleet's targets and set one-off runs apart; a
target removed from the file leaves them at once, and its alert is resolved. A storage
that cannot be reached is tried again on the next tick.

Beside the fleet's jobs, one ``ksa.retention`` every KSA_RETENTION_INTERVAL (1 h):
storage pruned by age and count, rolled up by day (storage/_retention.py).

Kept from before: first runs spread (the k-th of n new targets starts k/n of its
interval after it appears, so a new fleet does not fire at once); missed runs are
skipped, not caught up (the next run is the first slot of the target's cadence after
now) and every message expires after its interval, so runs do not pile up while
workers are down.
"""

from __future__ import annotations

import datetime as dt
import gc
import heapq
import logging
import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import beat

from kubestack_ai.plugins.pyutil import gc_paused
from kubestack_ai.plugins.redaction import redact_value

from .fleet import FleetError, fleet_signature, load_fleet
from .lock import BeatLock, FileBeatLock, RedisBeatLock

log = logging.getLogger(__name__)

STANDBY_POLL = 2.0
"""Seconds a beat without the lock waits before trying again."""

MISSING_LOG_EVERY = 60.0
"""Seconds between two log lines about a fleet file that stays missing."""

TICK_BUDGET = 1.0
"""Seconds one tick may spend publishing before it returns (and the next tick renews
the lock and re-reads the fleet)."""

RETENTION_JOB = "ksa retention"
"""The job pruning history and audit log (KSA_HISTORY_DAYS / KSA_HISTORY_PER_TARGET)."""

BATCH = 500
"""Messages (and their sent events) buffered per pipelined round trip."""


def require_producer_batch() -> None:
    """beat publishes a tick's jobs with ``Producer.batch`` (kombu >= 5.7): on an older
    kombu it would send nothing, so it does not start (SystemExit: a line, no traceback)."""
    import kombu  # noqa: PLC0415
    from kombu.messaging import Producer  # noqa: PLC0415

    if not hasattr(Producer, "batch"):
        raise SystemExit(f"beat: kombu {kombu.__version__} has no Producer.batch, which beat "
                         "publishes with: install kombu>=5.7 (pip install 'kombu>=5.7,<6')")


def make_lock(app: Any) -> BeatLock:
    settings = app.ksa_settings
    if settings.broker_is_redis:
        return RedisBeatLock(settings.broker_url, settings.beat_lock_ttl)
    return FileBeatLock(settings.home / "beat.lock")


class Job:
    """One periodic task of one target: what to send and when."""

    __slots__ = ("due", "expires", "first_later", "interval", "kwargs", "kwargsrepr",
                 "last_run_at", "name", "task", "total_run_count")

    def __init__(self, name: str, task: str, kwargs: dict[str, Any], interval: float,
                 first_later: bool = False) -> None:
        self.first_later = first_later
        """First run one interval after it appears (not at once, not spread)."""
        self.name = name
        self.task = task
        self.kwargs = kwargs
        self.interval = interval
        self.expires = interval
        self.kwargsrepr: str | None = None
        self.due = 0.0
        self.last_run_at: float | None = None
        self.total_run_count = 0

    def same(self, other: Job) -> bool:
        return (self.task, self.interval, self.kwargs) == (other.task, other.interval,
                                                           other.kwargs)

    def next_due(self, now: float) -> float:
        """The first slot of this job's cadence after ``now`` (missed slots skipped)."""
        return self.due + self.interval * (1 + max(0, math.floor((now - self.due) / self.interval)))

    def __repr__(self) -> str:
        return f"<Job {self.name} every {self.interval}s due {self.due:.3f}>"


def fleet_jobs(fleet: Any) -> Iterator[Job]:
    for t in fleet.targets:
        for name, task, kwargs, interval in t.jobs():
            yield Job(name, task, kwargs, interval)


class FleetScheduler(beat.Scheduler):
    def __init__(self, app: Any, *args: Any, fleet: str | None = None, **kwargs: Any) -> None:
        require_producer_batch()
        self.fleet_path: Path | None = None
        path = fleet or app.ksa_settings.fleet
        if path:
            self.fleet_path = Path(path)
        self._signature: object = None
        self.lock = make_lock(app)
        self.fleet_error: str | None = None
        self._missing_logged = 0.0
        self._leading: bool | None = None
        # targets are checked against the plugins this app knows (type, categories)
        self.known_types = {t: s.categories for t, s in app.ksa_specs.items()}
        self.jobs: dict[str, Job] = {}
        self._due: list[tuple[float, int, Job]] = []
        self._seq = 0
        self._routes: dict[str, dict[str, Any]] = {}
        self.notifier: Any = None
        self._notify_config: Any = None
        self._members: list[Any] | None = None
        """The fleet to declare to storage on the next tick (None: declared)."""
        self._store: Any = None
        super().__init__(app, *args, **kwargs)

    # -- the schedule -----------------------------------------------------------------

    def setup_schedule(self) -> None:
        if self.fleet_path is None:
            log.warning("beat: no fleet file (set KSA_FLEET or use ksa run --fleet): "
                        "nothing to schedule")
        self.reload_fleet(force=True)

    @property
    def schedule(self) -> dict[str, Job]:
        return self.jobs

    def reload_fleet(self, force: bool = False) -> bool:
        """Re-read the fleet when it changed; keep the running schedule when it is bad."""
        if self.fleet_path is None:
            return False
        try:
            sig = fleet_signature(self.fleet_path)
        except OSError as e:
            now = time.monotonic()
            if self._signature is not None or now - self._missing_logged >= MISSING_LOG_EVERY or (
                    force and not self._missing_logged):
                # once when it goes missing, then at most once a minute while it stays so
                log.error("beat: fleet %s: %s (keeping %d jobs)", self.fleet_path,
                          e.strerror, len(self.jobs))
                self._missing_logged = now
            self._signature = None
            return False
        self._missing_logged = 0.0
        if not force and sig == self._signature:
            return False
        self._signature = sig
        with gc_paused():
            try:
                fleet = load_fleet(self.fleet_path, self.known_types)
            except FleetError as e:
                self.fleet_error = str(e)
                log.error("beat: %s (keeping %d jobs)", e, len(self.jobs))
                return False
            self.fleet_error = None
            if not fleet.targets:
                log.warning("beat: fleet %s lists no targets: nothing to schedule",
                            self.fleet_path)
            self._set_notify(fleet.notify)
            self._members = [(t.key, t.target.type, t.target.endpoints, t.interval)
                             for t in fleet.targets]
            jobs = list(fleet_jobs(fleet))
            del fleet
            settings = self.app.ksa_settings
            if any(settings.retention().values()) or settings.adhoc_age() is not None:
                # first run an interval after beat starts: a beat restarting in a loop
                # must not prune on every start
                jobs.append(Job(RETENTION_JOB, "ksa.retention", {},
                                settings.retention_interval, first_later=True))
            self._merge(jobs)
        # the jobs live until the next change: out of the GC's way (it would walk them
        # on every full collection while beat sends)
        gc.freeze()
        return True

    def _set_notify(self, config: Any) -> None:
        """Notifications are sent from here, the one beat that holds the lock (see
        kubestack_ai.notify for why); a changed ``notify:`` section replaces the notifier."""
        if config == self._notify_config:
            return
        if self.notifier is not None:
            self.notifier.close()
            self.notifier = None
        self._notify_config = config
        if config is not None and config.enabled:
            from kubestack_ai.notify import Notifier  # noqa: PLC0415
            from kubestack_ai.storage import Store  # noqa: PLC0415

            settings = self.app.ksa_settings
            self.notifier = Notifier(Store(self._store_url()), config, home=settings.home)
            log.info("beat: notifications to %d Alertmanager(s), %d webhook(s)",
                     len(config.alertmanager), len(config.webhook))

    def _store_url(self) -> str:
        from kubestack_ai.storage import default_url  # noqa: PLC0415

        settings = self.app.ksa_settings
        return str(settings.database_url or default_url({"KSA_HOME": str(settings.home)}))

    def declare_fleet(self) -> None:
        """Tell storage which targets are the fleet's; the ones that left it are resolved
        by the notifier. Kept for the next tick when storage cannot be reached."""
        if self._members is None:
            return
        from kubestack_ai.storage import FleetMember, StorageError, Store  # noqa: PLC0415

        if self._store is None:
            self._store = Store(self._store_url())
        try:
            self._store.migrate()
            gone = self._store.set_fleet(FleetMember(*m) for m in self._members)
        except StorageError as e:
            log.warning("beat: cannot declare the fleet to storage (retrying next tick): %s", e)
            return
        self._members = None
        if gone:
            log.info("beat: %d target(s) left the fleet: %s", len(gone),
                     ", ".join(gone[:10]) + (" ..." if len(gone) > 10 else ""))
            if self.notifier is not None:
                self.notifier.remove(gone)

    def _merge(self, jobs: list[Job]) -> None:
        now = time.time()
        old = self.jobs
        new: dict[str, Job] = {}
        fresh: dict[str, list[Job]] = {}
        changed = 0
        for job in jobs:
            prev = old.get(job.name)
            if prev is None and job.first_later:
                job.due = now + job.interval
                self._push(job)
            elif prev is None:
                fresh.setdefault(job.task.split(".", 1)[0], []).append(job)
            elif not prev.same(job):
                # keep its place in the cadence: the next run is last run + new interval
                job.last_run_at, job.total_run_count = prev.last_run_at, prev.total_run_count
                job.due = (prev.last_run_at + job.interval if prev.last_run_at is not None
                           else min(prev.due, now + job.interval))
                self._push(job)
                changed += 1
            else:
                job = prev
            new[job.name] = job
        for kind in fresh.values():
            # the k-th of n new jobs of a kind starts k/n of its interval from now
            n = len(kind)
            for k, job in enumerate(kind):
                job.due = now + job.interval * k / n
                self._push(job)
        removed = len(set(old) - set(new))
        self.jobs = new
        if len(self._due) > 2 * len(new) + 64:  # drop the stale heap entries
            self._due = [e for e in self._due if new.get(e[2].name) is e[2] and e[0] == e[2].due]
            heapq.heapify(self._due)
        log.info("beat: fleet %s: %d jobs (%d added, %d changed, %d removed)", self.fleet_path,
                 len(new), sum(len(v) for v in fresh.values()), changed, removed)

    def _push(self, job: Job) -> None:
        self._seq += 1
        heapq.heappush(self._due, (job.due, self._seq, job))

    # -- the loop ---------------------------------------------------------------------

    def tick(self, *args: Any, **kwargs: Any) -> float:
        leading = self.lock.acquire()
        if leading != self._leading:
            if leading:
                log.info("beat: holding the beat lock (%s): scheduling", type(self.lock).__name__)
            else:
                log.info("beat: another beat holds the lock (%s): standing by, trying again "
                         "every %gs", type(self.lock).__name__, STANDBY_POLL)
            self._leading = leading
        if not leading:
            return STANDBY_POLL
        self.reload_fleet()
        self.declare_fleet()
        if self.notifier is not None:
            self.notifier.tick()  # polls in its own thread: never delays scheduling
        return self.dispatch_due()

    def dispatch_due(self) -> float:
        """Send every job due now (within TICK_BUDGET); seconds until the next one."""
        heap, jobs = self._due, self.jobs
        now = time.time()
        until = time.monotonic() + TICK_BUDGET
        sent = 0
        if heap and heap[0][0] <= now:
            try:
                producer = self.producer
                with producer.batch(BATCH):
                    while heap and heap[0][0] <= now:
                        due, _, job = heapq.heappop(heap)
                        if jobs.get(job.name) is not job or due != job.due:
                            continue  # removed or rescheduled since it was pushed
                        # rescheduled first: a run that cannot be sent is skipped, and
                        # its message would have expired by the next slot anyway
                        job.last_run_at = now
                        job.total_run_count += 1
                        job.due = job.next_due(now)
                        self._push(job)
                        self._send(producer, job, now)
                        sent += 1
                        if sent % 100 == 0 and time.monotonic() > until:
                            break
            except Exception as e:  # broker down: say so, reconnect on the next tick
                log.error("beat: sending due jobs failed after %d: %s: %s", sent,
                          type(e).__name__, e)
                self.__dict__.pop("producer", None)
                self._routes.clear()
                conn = self.__dict__.pop("connection", None)
                if conn is not None:
                    conn.release()
                return STANDBY_POLL
            log.debug("beat: sent %d", sent)
        if heap and heap[0][0] <= time.time():
            return 0.0
        wait = heap[0][0] - time.time() if heap else self.max_interval
        return float(max(0.0, min(wait, self.max_interval)))

    def _send(self, producer: Any, job: Job, now: float) -> None:
        amqp = self.app.amqp
        route = self._routes.get(job.task)
        declare = None  # the queue is declared on its first message (per connection)
        if route is None:
            route = self._routes[job.task] = {**amqp.router.route({}, job.task, (), {}),
                                              "declare": []}
        else:
            declare = route["declare"]
        if job.kwargsrepr is None:
            # kwargs are JSON from the fleet file (no cycles, no odd reprs): the builtin
            # repr, cut as Celery cuts it, is 10x cheaper than saferepr; made once per job,
            # with the one redaction every task's repr gets
            job.kwargsrepr = repr(redact_value(job.kwargs))[:amqp.kwargsrepr_maxsize]
        # no task-sent event: it doubled the cost of a send (a second message, and an
        # exchange declare each); workers' received/started/succeeded events still show
        # every task in Flower
        message = amqp.create_task_message(
            str(uuid.uuid4()), job.task, (), job.kwargs,
            expires=dt.datetime.fromtimestamp(now + job.expires, dt.UTC).isoformat(),
            argsrepr="()", kwargsrepr=job.kwargsrepr, create_sent_event=False)
        amqp.send_task_message(producer, job.task, message, headers={"celery_beat_task": True},
                               queue=route["queue"], routing_key=route["routing_key"],
                               declare=declare)

    def close(self) -> None:
        try:
            if self.notifier is not None:
                self.notifier.close()
            if self._store is not None:
                self._store.dispose()
            super().close()
        finally:
            self.lock.release()

    @property
    def info(self) -> str:
        return f"fleet={self.fleet_path} lock={type(self.lock).__name__}"
