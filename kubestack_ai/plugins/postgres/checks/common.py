"""Helpers shared by the category checks: reading what prepare() fetched, reporting
what could not be read (an INFO finding naming the grant, never an error), and counters
judged as rates (``plugins/rates.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...base import Run
from ...errors import PluginError
from ...models import Severity
from ...rates import Rate, counter_rate
from ..client import QueryFailure, Rows, quote_ident
from ..constants import DEFAULTS

# pg_stat_database, pg_stat_bgwriter and pg_stat_wal counters, read by every run
COUNTERS = ("xact_commit", "xact_rollback", "deadlocks", "temp_files", "temp_bytes",
            "blks_hit", "blks_read", "checkpoints_timed", "checkpoints_req", "wal_bytes")
COUNTERS_SQL = (
    "SELECT d.*, b.checkpoints_timed, b.checkpoints_req, "
    "(SELECT wal_bytes FROM pg_stat_wal) AS wal_bytes FROM (SELECT sum(xact_commit) AS "
    "xact_commit, sum(xact_rollback) AS xact_rollback, sum(deadlocks) AS deadlocks, "
    "sum(temp_files) AS temp_files, sum(temp_bytes) AS temp_bytes, sum(blks_hit) AS blks_hit, "
    "sum(blks_read) AS blks_read FROM pg_stat_database) d, pg_stat_bgwriter b")

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema')"


class ServerUnreadable(PluginError):
    """postgres: the server's identity, settings or counters could not be read (by
    prepare(); a check that runs after it failed raises it too)."""


def ident(run: Run) -> dict[str, Any]:
    got = run.data.get("ident")
    if got is None:
        raise ServerUnreadable("nothing was read from the server (see _prepare)")
    return got  # type: ignore[no-any-return]


def setting(run: Run, name: str) -> str | None:
    v = run.data["settings"].get(name)
    return None if v is None else str(v)


def setting_num(run: Run, name: str) -> float | None:
    v = setting(run, name)
    try:
        return float(v) if v not in (None, "") else None
    except ValueError:
        return None


def th(run: Run, name: str) -> float:
    """A threshold: the target's, else the plugin config's, else constants.DEFAULTS."""
    return run.threshold(name, DEFAULTS[name])


def pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


def short(text: Any, limit: int = 200) -> str:
    s = "" if text is None else " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def add_error(run: Run, category: str, text: str) -> None:
    prev = run.errors.get(category)
    run.errors[category] = f"{prev}; {text}" if prev else text


def rows(run: Run, key: str, category: str, what: str, q: dict[str, Any] | None = None
         ) -> Rows | None:
    """The rows prepare() fetched under ``key``; None when not fetched or refused. A
    refused privilege is an INFO finding naming the grant; a missing object is nothing;
    any other failure is the category's error."""
    got = (run.data["q"] if q is None else q).get(key)
    if got is None:
        return None
    if isinstance(got, QueryFailure):
        if got.kind == "privilege":
            lacking(run, category, what, str(got), grant_monitor(run))
        elif got.kind != "missing":
            add_error(run, category, f"could not read {what}: {got}")
        return None
    return got  # type: ignore[no-any-return]


def grant_monitor(run: Run) -> str:
    return f"GRANT pg_monitor TO {quote_ident(ident(run)['usr'])};"


def lacking(run: Run, category: str, what: str, why: str, grant: str) -> None:
    """An INFO finding: this part was not checked, and the statement that allows it."""
    seen: set[tuple[str, str]] = run.data.setdefault("_lacking", set())
    if (category, what) in seen:
        return
    seen.add((category, what))
    run.finding(f"postgres.{category}.privilege_missing", Severity.INFO,
                f"Not checked: {what} (role {ident(run)['usr']} lacks a privilege)",
                evidence={"what": what, "why": why, "role": ident(run)["usr"]},
                suggestion=f"As a superuser: {grant}", category=category)


def per_database(run: Run, check: Callable[[], None]) -> None:
    """Run ``check`` on the target's database, then on each further one (option
    ``databases``) with that database's rows in ``run.data["q"]``; with more than one,
    each finding names its database and its suggestion says where to run it."""
    extra: list[tuple[str, dict[str, Any]]] = run.data.get("dbs") or []
    if not extra:
        check()
        return
    main_q = run.data["q"]
    for db, q in [(ident(run)["db"], main_q), *extra]:
        start = len(run.findings)
        run.data["q"] = q
        try:
            check()
        finally:
            run.data["q"] = main_q
        for i in range(start, len(run.findings)):
            f = run.findings[i]
            run.findings[i] = f.model_copy(update={
                "evidence": {"database": db, **f.evidence},
                "suggestion": f"In {quote_ident(db)}: {f.suggestion}"})


def rate(run: Run, name: str) -> Rate:
    """Counter ``name`` over the window (stored runs, else this run's two readings)."""
    return counter_rate(name, run.data["reading"], run.data["past"],
                        window_seconds=th(run, "rate_window_seconds"),
                        in_run_since=run.data.get("in_run_since"))


def moving_evidence(*rates: Rate) -> dict[str, Any]:
    ev: dict[str, Any] = {}
    for r in rates:
        ev.update(r.evidence())
    return ev


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 60}m {s % 60}s" if s >= 60 else f"{s}s"


def backend(r: dict[str, Any]) -> dict[str, Any]:
    """A backend as evidence names it: pid, user, application, client, database, start
    of its query and transaction, what it waits on, its query (cut)."""
    out = {"pid": r["pid"], "user": r.get("usename"), "application": r.get("application_name"),
           "client": r.get("client_addr"), "database": r.get("datname")}
    for k in ("state", "wait_event_type", "wait_event"):
        if r.get(k) is not None:
            out[k] = r[k]
    for k in ("query_start", "xact_start", "state_change"):
        if r.get(k) is not None:
            out[k] = r[k].isoformat() if hasattr(r[k], "isoformat") else str(r[k])
    for k in ("query_s", "xact_s", "idle_s", "wait_s"):
        if r.get(k) is not None:
            out[k] = round(float(r[k]), 1)
    if "query" in r:
        out["query"] = short(r["query"])
    return out
