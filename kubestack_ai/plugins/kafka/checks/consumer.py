"""Category ``consumer``: every group with its state and members, lag per partition and
per group (high-water mark - committed offset, read now, never negative; groups with no
active members included), partition assignment, and Burrow's status over a window made
of earlier runs' readings (``run.history``) or, when those are too few, of a short
sampling window inside this run."""

from __future__ import annotations

import time
from collections.abc import Mapping

from ...base import Run, category
from ...models import Severity
from .. import burrow
from ..constants import (
    ERR_STATUSES,
    OFFSETS_METRIC,
    OK,
    REBALANCING_STATES,
    STALL,
    STATE_DEAD,
    STATE_EMPTY,
    STATE_STABLE,
    STOP,
    WARN,
)
from ..model import TP, Cluster, Group, Sample
from ..report import F, emit, named, th, tp_name

_STATUS_CODE = {STOP: "kafka.consumer.group_stop", STALL: "kafka.consumer.group_stall",
                "REWIND": "kafka.consumer.group_rewind", WARN: "kafka.consumer.group_warn"}
_STATUS_TEXT = {STOP: "has stopped committing while it lags",
                STALL: "commits the same offsets while it lags",
                "REWIND": "moved its committed offsets backwards",
                WARN: "lags and the lag is not decreasing"}
_STATUS_DO = {STOP: "Start the group's consumers, or delete the group if it is retired.",
              STALL: "The consumers are alive but stuck: look for a poison message, a "
                     "blocked downstream, or an exception loop in their logs.",
              "REWIND": "Someone reset the group's offsets, or the consumer seeks backwards: "
                        "expect reprocessed messages.",
              WARN: "The consumers do not keep up: add consumers (up to the partition count) "
                    "or speed up processing."}


def state_findings(groups: Mapping[str, Group], lags: Mapping[str, Mapping[TP, int]]) -> list[F]:
    out: list[F] = []
    rebalancing = [g for g in groups.values() if g.state in REBALANCING_STATES]
    if rebalancing:
        out.append(F("kafka.consumer.group_rebalancing", Severity.WARNING,
                     f"{len(rebalancing)} group(s) are rebalancing",
                     {"groups": {g.group_id: g.state for g in named(rebalancing)}},
                     "Consumption pauses during a rebalance; if it keeps happening, look for "
                     "consumers exceeding max.poll.interval.ms or session timeouts."))
    empty = [g for g in groups.values() if g.state == STATE_EMPTY]
    if empty:
        out.append(F("kafka.consumer.group_empty", Severity.INFO,
                     f"{len(empty)} group(s) have no active members",
                     {"lag_by_group": {g.group_id: sum(lags.get(g.group_id, {}).values())
                                       for g in named(empty)}},
                     "Their lag is still counted: an idle group with lag is a consumer that "
                     "is not running."))
    dead = [g.group_id for g in groups.values() if g.state == STATE_DEAD]
    if dead:
        out.append(F("kafka.consumer.group_dead", Severity.INFO,
                     f"{len(dead)} group(s) are dead (no members, no offsets)",
                     {"groups": named(sorted(dead))}, "Nothing to do unless they should exist."))
    failed = {g.group_id: g.error for g in groups.values() if g.error}
    if failed:
        out.append(F("kafka.consumer.group_unreadable", Severity.WARNING,
                     f"{len(failed)} group(s) could not be described",
                     {"groups": dict(named(sorted(failed.items())))},
                     "Check the group coordinators and the diagnosing user's Describe ACL on groups."))
    return out


def assignment_findings(group: Group, cluster: Cluster, skew_ratio: float) -> list[F]:
    """Partitions nobody owns, members with nothing, and skew, for a stable consumer group
    whose members' assignments the broker reported."""
    if group.state != STATE_STABLE or not group.members:
        return []
    if any(m.assignment is None for m in group.members):
        return []  # compat difference 3: not reported, not judged
    owned: dict[TP, str] = {}
    for m in group.members:
        for tp in m.assigned():
            owned[tp] = m.member_id
    subscribed: set[str] = set()
    for m in group.members:
        subscribed.update(m.subscription or ())
    out: list[F] = []
    unowned = [f"{t}:{p.partition}" for t in sorted(subscribed) if t in cluster.topics
               for p in cluster.topics[t].partitions if (t, p.partition) not in owned]
    if unowned:
        out.append(F("kafka.consumer.partitions_unassigned", Severity.WARNING,
                     f"Group {group.group_id}: {len(unowned)} subscribed partition(s) have no owner",
                     {"group": group.group_id, "count": len(unowned), "partitions": named(unowned)},
                     "Nobody consumes these partitions: check the assignor and the members' "
                     "subscriptions."))
    counts = {m.member_id: len(m.assigned()) for m in group.members}
    idle = sorted(mid for mid, n in counts.items() if n == 0)
    if idle:
        out.append(F("kafka.consumer.idle_members", Severity.INFO,
                     f"Group {group.group_id}: {len(idle)} member(s) have no partitions",
                     {"group": group.group_id, "members": named(idle),
                      "partitions": len(owned), "member_count": len(counts)},
                     "More consumers than partitions: the extra ones only wait."))
    busy = [n for n in counts.values() if n > 0]
    if len(busy) > 1 and max(busy) >= skew_ratio * min(busy) and max(busy) - min(busy) > 1:
        out.append(F("kafka.consumer.assignment_skew", Severity.WARNING,
                     f"Group {group.group_id}: partitions are unevenly assigned",
                     {"group": group.group_id, "partitions_per_member": counts,
                      "ratio_threshold": skew_ratio},
                     "Use a balanced assignor (cooperative-sticky or round-robin) or a "
                     "partition count divisible by the member count."))
    return out


def lag_findings(lags: Mapping[str, Mapping[TP, int]], warning: float, critical: float,
                 behind: Mapping[str, float | None] | None = None) -> list[F]:
    out: list[F] = []
    for g, parts in sorted(lags.items()):
        total = sum(parts.values())
        if total <= warning:
            continue
        sev = Severity.CRITICAL if total > critical else Severity.WARNING
        top = sorted(parts.items(), key=lambda kv: -kv[1])
        secs = (behind or {}).get(g)
        out.append(F("kafka.consumer.lag_high", sev,
                     f"Group {g} lags {total} messages"
                     + (f" (about {_duration(secs)} behind at its consume rate)"
                        if secs is not None else ""),
                     {"group": g, "lag": total, "threshold": critical if total > critical else warning,
                      "time_behind_s": secs,
                      "partitions": {tp_name(tp): v for tp, v in named(top, 20)}},
                     "The consumers fall behind the producers: scale them out or find the slow step."))
    return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def evaluate(state: burrow.State, current: Mapping[str, Mapping[TP, int]], now: float,
             allowed: float, minimum: int,
             recent: Mapping[str, Mapping[TP, list[int | None]]],
             members: Mapping[str, int] | None = None,
             ) -> dict[str, tuple[str, dict[TP, str]]]:
    """Burrow status per group (worst partition) and per partition, over the rings. A
    group without members never commits again: its ring is judged however short."""
    out: dict[str, tuple[str, dict[TP, str]]] = {}
    for g, parts in current.items():
        tracks = state.groups.get(g)
        if tracks is None:
            continue
        need = minimum if members is None or members.get(g, 0) > 0 else 1
        per: dict[TP, str] = {}
        for tp, lag in parts.items():
            tr = tracks.get(tp)
            if tr is None:
                continue
            per[tp] = burrow.partition_status(tr.commits, lag, now, allowed,
                                              recent.get(g, {}).get(tp, ()), need)
        out[g] = (burrow.worst(per.values()), per)
    return out


def time_behind(state: burrow.State, lags: Mapping[str, Mapping[TP, int]]) -> dict[str, float | None]:
    """A group's lag in seconds: its lag over the rate it committed at across its rings
    (None when the rate cannot be measured; no lag is 0 s)."""
    out: dict[str, float | None] = {}
    for g, parts in lags.items():
        total = sum(parts.values())
        if total == 0:
            out[g] = 0.0
            continue
        rates = [burrow.consume_rate(tr.commits) for tr in state.groups.get(g, {}).values()]
        known = [r for r in rates if r is not None]
        rate = sum(known)
        out[g] = round(total / rate, 1) if known and rate > 0 else None
    return out


def status_findings(results: Mapping[str, tuple[str, dict[TP, str]]], state: burrow.State,
                    lags: Mapping[str, Mapping[TP, int]], source: Mapping[str, str],
                    now: float, window_len: int = 10) -> list[F]:
    out: list[F] = []
    for g, (status, per) in sorted(results.items()):
        if status == OK:
            continue
        src = source.get(g, "history")
        if src.startswith("history"):
            # the ring holds commits of an earlier run: it spans at least the time
            # between runs, whatever this run's samples added
            sev = Severity.CRITICAL if status in ERR_STATUSES else Severity.WARNING
        else:
            # a window of a second or two cannot tell a stall from a commit interval;
            # offsets going back it can
            sev = Severity.WARNING if status in (STOP, "REWIND") else Severity.INFO
        bad = [tp for tp, s in sorted(per.items()) if s == status]
        detail = {}
        for tp in named(bad, 10):
            w = state.groups[g][tp].commits
            detail[tp_name(tp)] = {"offsets": [e.offset for e in w], "lags": [e.lag for e in w],
                                   "commit_times": [round(e.at, 3) for e in w],
                                   "span_s": round(w[-1].at - w[0].at, 3),
                                   "since_last_commit_s": round(now - w[-1].at, 3),
                                   "complete": round(min(len(w) / window_len, 1.0), 2)}
        out.append(F(_STATUS_CODE[status], sev,
                     f"Group {g} {_STATUS_TEXT[status]} ({status})",
                     {"group": g, "status": status, "window": src,
                      "lag": sum(lags.get(g, {}).values()), "partitions": detail,
                      "partitions_in_status": len(bad)},
                     _STATUS_DO[status]))
    return out


def previous_state(run: Run) -> burrow.State:
    """The rings the newest earlier run kept (each run carries all of them forward)."""
    for snap in reversed(run.history):
        payload = snap.metrics.get(OFFSETS_METRIC)
        if payload is not None:
            return burrow.State.decode(payload)
    return burrow.State()


class ConsumerChecks:
    @category("consumer")
    def check_consumer(self, run: Run) -> None:
        from .. import collect  # imports kafka-python: only once connected

        cluster: Cluster = self._cluster(run)  # type: ignore[attr-defined]
        wire = self._wire  # type: ignore[attr-defined]
        flavor: str = run.data["flavor"]
        d = run.deadline
        if "listed" in run.data:  # read by prepare, with the other reads after metadata
            listed, failed_brokers = run.data["listed"], run.data["listed_errors"]
        else:
            listed, failed_brokers = collect.list_groups(wire, cluster, d)
        if failed_brokers:
            run.errors["consumer.list_groups"] = "; ".join(
                f"broker {k}: {v}" for k, v in sorted(failed_brokers.items()))
        names = sorted(listed)
        limit = int(th(run, "max_groups"))
        if len(names) > limit:
            run.finding("kafka.consumer.groups_truncated", Severity.INFO,
                        f"{len(names)} groups: only the first {limit} were diagnosed",
                        evidence={"groups": len(names), "max_groups": limit},
                        suggestion="Raise the max_groups threshold or give the run more time.")
            names = names[:limit]
        coord, coord_errors = collect.coordinators(wire, cluster, names, d)
        # the groups' descriptions travel with their first offsets reading
        first, offset_errors, described = collect.sample(
            wire, cluster, coord, flavor, d, latest=run.data.get("latest"), describe=listed)
        groups = described or {}
        for g, err in coord_errors.items():
            groups[g] = Group(g, protocol_type=listed.get(g, ""), error=f"no coordinator: {err}")
        for g, err in offset_errors.items():
            if g in groups and not groups[g].error:
                groups[g].error = f"offsets: {err}"
        members = {g: len(groups[g].members) if g in groups else 0 for g in first.committed}
        lags = {g: first.lag(g) for g in first.committed}

        run.metric("consumer_groups", len(names))
        run.metric("group_state", {g: groups[g].state for g in sorted(groups)})
        run.metric("group_members", {g: len(groups[g].members) for g in sorted(groups)})
        run.metric("group_lag", {g: sum(v.values()) for g, v in sorted(lags.items())})
        cap = int(th(run, "max_tracked_partitions"))
        run.metric("partition_lag", {g: {tp_name(tp): v for tp, v in sorted(parts.items())}
                                     for g, parts in sorted(lags.items())} if
                   sum(len(v) for v in lags.values()) <= cap else "omitted: too many partitions")
        run.metric("assignment_reported", all(m.assignment is not None for g in groups.values()
                                              for m in g.members))

        emit(run, state_findings(groups, lags))
        skew = th(run, "assignment_skew_ratio")
        for g in sorted(groups):
            emit(run, assignment_findings(groups[g], cluster, skew))
        current, behind = self._judge(run, first, lags, members, coord, cluster, flavor)
        emit(run, lag_findings(current, th(run, "group_lag_warning"),
                               th(run, "group_lag_critical"), behind))

    def _judge(self, run: Run, first: Sample, lags: dict[str, dict[TP, int]],
               members: dict[str, int], coord: dict[str, int], cluster: Cluster,
               flavor: str) -> tuple[dict[str, dict[TP, int]], dict[str, float | None]]:
        """Burrow's status of every group from its rings of commits; returns the lag
        judged (the last in-run reading's, for sampled groups) and the time behind."""
        from .. import collect

        allowed = th(run, "burrow_allowed_lag")
        window_len = max(2, int(th(run, "burrow_window")))
        minimum = max(1, int(th(run, "burrow_min_entries")))
        interval = th(run, "burrow_commit_interval_seconds")
        state = previous_state(run)
        tracked_before = set(state.groups)
        recent = state.observe(first, members, window_len, interval=interval)

        def ring(g: str, tp: TP) -> int:
            tr = state.groups.get(g, {}).get(tp)
            return len(tr.commits) if tr is not None else 0

        # lagging groups with members whose rings are too short get an in-run window:
        # each reading of an active group is a commit. A group without members commits
        # nothing in a second: sampling it would only cost the wait.
        short = sorted(g for g, parts in lags.items() if members.get(g, 0) > 0
                       and any(v > allowed and ring(g, tp) < minimum for tp, v in parts.items()))
        source = {g: "history" if g in tracked_before else "new" for g in lags}
        current = lags
        if short:
            n = max(2, int(th(run, "lag_samples")))
            step = th(run, "lag_sample_seconds") / (n - 1)
            last = first
            for _ in range(n - 1):
                run.deadline.check("lag sampling")
                time.sleep(min(step, run.deadline.remaining()))
                last, _errs, _ = collect.sample(
                    self._wire, cluster, coord, flavor, run.deadline, short,  # type: ignore[attr-defined]
                    known={g: list(first.committed.get(g, {})) for g in short},
                    latest=run.data.get("latest"))
                for g, parts in state.observe(last, members, window_len, short,
                                              interval).items():
                    for tp, hws in parts.items():
                        recent.setdefault(g, {}).setdefault(tp, []).extend(hws)
            current = {**lags, **{g: last.lag(g) for g in short}}
            for g in short:
                source[g] = "history+in-run" if g in tracked_before else "in-run"
            run.metric("group_lag", {g: sum(v.values()) for g, v in sorted(current.items())})
        now = time.time()
        expired = self._expire(run, state, current, now)
        results = evaluate(state, {g: v for g, v in current.items() if g not in expired},
                           now, allowed, minimum, recent, members)
        behind = time_behind(state, current)
        statuses = {g: s for g, (s, _) in results.items()}
        statuses.update(dict.fromkeys(expired, "EXPIRED"))
        run.metric("group_status", dict(sorted(statuses.items())))
        run.metric("window_source", {g: source.get(g, "history") for g in sorted(statuses)})
        run.metric("group_time_behind_s", dict(sorted(behind.items())))
        without = sorted(g for g in current if source.get(g) in ("new", "in-run"))
        run.metric("judged_without_history", without)
        emit(run, status_findings(results, state, current, source, now, window_len))
        dropped = state.keep(current, int(th(run, "max_tracked_partitions")), allowed)
        run.metric("untracked_groups", dropped)
        if dropped:
            run.finding("kafka.consumer.history_truncated", Severity.INFO,
                        f"{len(dropped)} group(s) beyond max_tracked_partitions keep no "
                        "commit history: they are judged without it next run",
                        evidence={"groups": named(dropped), "count": len(dropped),
                                  "max_tracked_partitions": th(run, "max_tracked_partitions"),
                                  "judged_without_history_now": named(without)},
                        suggestion="Raise max_tracked_partitions; lagging groups are kept first.")
        run.metric(OFFSETS_METRIC, state.encode())
        return current, behind

    def _expire(self, run: Run, state: burrow.State, current: Mapping[str, Mapping[TP, int]],
                now: float) -> set[str]:
        """Groups with no commit for ``expire_group_seconds`` (Burrow's expire-group):
        reported once as expired (INFO), then not judged until they commit again."""
        limit = th(run, "expire_group_seconds")
        out: set[str] = set()
        fresh: list[tuple[str, float]] = []
        for g in current:
            last = state.last_commit(g)
            if last is None or now - last <= limit:
                state.expired.pop(g, None)
                continue
            out.add(g)
            if state.expired.get(g) != round(last, 3):
                state.expired[g] = round(last, 3)
                fresh.append((g, last))
        for g in list(state.expired):
            if g not in current:
                del state.expired[g]
        if fresh:
            run.finding("kafka.consumer.group_expired", Severity.INFO,
                        f"{len(fresh)} group(s) have not committed for more than "
                        f"{limit:g} s: expired, no longer judged until they commit again",
                        evidence={"groups": {g: {"last_commit_s_ago": round(now - t, 1),
                                                 "lag": sum(current[g].values())}
                                             for g, t in named(sorted(fresh))},
                                  "expire_group_seconds": limit},
                        suggestion="Delete the group if it is retired "
                                   "(kafka-consumer-groups --delete --group NAME); start its "
                                   "consumers if not.")
        return out
