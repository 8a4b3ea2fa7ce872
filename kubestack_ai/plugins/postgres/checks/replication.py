"""Replication: on a primary each standby's state and lag in bytes and time; on a
standby its receive and replay lag and whether replay is paused; replication slots
(inactive ones and the WAL they hold back, ``wal_status`` lost or unreserved, no
``max_slot_wal_keep_size``). Every further endpoint of the target (a standby) is
diagnosed too, each finding naming its node."""

from __future__ import annotations

from typing import Any

from ...base import Run, category
from ...models import Severity
from ..client import quote_ident, quote_literal
from .common import ident, lacking, rows, setting_num, th

PRIMARY = ("standbys", "SELECT pid, usename, application_name, client_addr::text AS client_addr, "
           "state, sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)::bigint AS "
           "sent_lag_bytes, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS "
           "replay_lag_bytes, extract(epoch FROM write_lag) AS write_lag_s, extract(epoch FROM "
           "flush_lag) AS flush_lag_s, extract(epoch FROM replay_lag) AS replay_lag_s "
           "FROM pg_stat_replication ORDER BY application_name")
STANDBY = ("standby_self", "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), "
           "pg_last_wal_replay_lsn())::bigint AS replay_gap_bytes, CASE WHEN "
           "pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 ELSE extract(epoch FROM "
           "now() - pg_last_xact_replay_timestamp()) END AS replay_lag_s, "
           "pg_is_wal_replay_paused() AS paused, (SELECT status FROM pg_stat_wal_receiver) AS "
           "receiver_status, (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver) "
           "AS sender, (SELECT extract(epoch FROM now() - last_msg_receipt_time) FROM "
           "pg_stat_wal_receiver) AS last_msg_s")
SLOTS = ("slots", "SELECT slot_name, slot_type, plugin, database, active, active_pid, wal_status, "
         "safe_wal_size, pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN "
         "pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, restart_lsn)::bigint AS "
         "retained_bytes FROM pg_replication_slots ORDER BY slot_name")


def queries_for(in_recovery: bool) -> list[tuple[str, str]]:
    return [STANDBY if in_recovery else PRIMARY, SLOTS]


def queries(run: Run) -> list[tuple[str, str]]:
    return queries_for(bool(ident(run)["in_recovery"]))


def _mib(n: float | None) -> str:
    return "?" if n is None else f"{n / 1048576:.1f} MiB"


class ReplicationChecks:
    @category("replication")
    def check_replication(self, run: Run) -> None:
        nodes: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
            (run.data["endpoint"], ident(run), run.data["q"])]
        nodes += run.data.get("nodes", [])
        run.metric("replication.role", "standby" if ident(run)["in_recovery"] else "primary")
        for endpoint, me, q in nodes:
            if me.get("error"):
                run.finding("postgres.replication.node_unreachable", Severity.CRITICAL,
                            f"Cannot diagnose node {endpoint}: {me['error']}",
                            evidence={"node": endpoint, "error": me["error"]},
                            suggestion=f"Check the server at {endpoint} runs and accepts the "
                            "monitoring role (pg_hba.conf, listen_addresses).")
                continue
            if me["in_recovery"]:
                self._standby(run, endpoint, q)
            else:
                self._primary(run, endpoint, me, q)
            self._slots(run, endpoint, q)

    def _primary(self, run: Run, node: str, me: dict[str, Any], q: dict[str, Any]) -> None:
        got = rows(run, "standbys", "replication", "pg_stat_replication", q) or []
        run.metric("replication.standbys", len(got))
        if got and not me["read_all_stats"]:
            lacking(run, "replication", "standby lag (pg_stat_replication hides it)",
                    "pg_stat_replication shows LSNs only to pg_read_all_stats",
                    f"GRANT pg_monitor TO {quote_ident(me['usr'])};")
        lag_b, lag_s = th(run, "replication_lag_bytes"), th(run, "replication_lag_seconds")
        for r in got:
            name = r["application_name"] or r["client_addr"]
            ev = {"node": node, "standby": name, "client": r["client_addr"], "pid": r["pid"],
                  "state": r["state"], "sync_state": r["sync_state"],
                  "replay_lag_bytes": r["replay_lag_bytes"], "sent_lag_bytes": r["sent_lag_bytes"],
                  "replay_lag_s": r["replay_lag_s"] and round(float(r["replay_lag_s"]), 2),
                  "threshold_bytes": lag_b, "threshold_s": lag_s}
            if r["state"] != "streaming":
                run.finding("postgres.replication.standby_not_streaming", Severity.WARNING,
                            f"Standby {name} on {node} is {r['state']}, not streaming",
                            evidence=ev, suggestion="Look at the standby's log: a standby in "
                            "catchup or backup is not yet a failover candidate.")
            behind_b = (r["replay_lag_bytes"] or 0) >= lag_b
            behind_s = float(r["replay_lag_s"] or 0) >= lag_s
            if behind_b or behind_s:
                run.finding("postgres.replication.standby_lag",
                            Severity.CRITICAL if behind_b and behind_s else Severity.WARNING,
                            f"Standby {name} replays {_mib(r['replay_lag_bytes'])} / "
                            f"{ev['replay_lag_s']} s behind {node}",
                            evidence=ev, suggestion="On the standby: SELECT * FROM "
                            "pg_stat_wal_receiver; check its disk and CPU (replay is one "
                            "process), and long queries there holding replay back "
                            "(max_standby_streaming_delay).")

    def _standby(self, run: Run, node: str, q: dict[str, Any]) -> None:
        got = rows(run, "standby_self", "replication", "the standby's replay position", q)
        if not got:
            return
        r = got[0]
        lag_s = float(r["replay_lag_s"] or 0)
        gap = int(r["replay_gap_bytes"] or 0)
        ev = {"node": node, "replay_lag_s": round(lag_s, 2), "replay_gap_bytes": gap,
              "replay_paused": bool(r["paused"]), "receiver_status": r["receiver_status"],
              "sender": r["sender"], "last_message_s": r["last_msg_s"] and round(float(r["last_msg_s"]), 1)}
        run.metric(f"replication.node.{node}.replay_lag_s", round(lag_s, 2))
        if r["paused"]:
            run.finding("postgres.replication.replay_paused", Severity.WARNING,
                        f"Replay is paused on standby {node}", evidence=ev,
                        suggestion=f"On {node}: SELECT pg_wal_replay_resume();")
        if r["receiver_status"] != "streaming":
            run.finding("postgres.replication.receiver_down", Severity.CRITICAL,
                        f"Standby {node} receives no WAL (wal receiver: "
                        f"{r['receiver_status'] or 'not running'})", evidence=ev,
                        suggestion=f"On {node}: check primary_conninfo (SHOW primary_conninfo;) "
                        "and the log; the primary must accept the replication role in "
                        "pg_hba.conf.")
        lim_s, lim_b = th(run, "replication_lag_seconds"), th(run, "replication_lag_bytes")
        if lag_s >= lim_s or gap >= lim_b:
            run.finding("postgres.replication.replay_lag",
                        Severity.CRITICAL if lag_s >= lim_s and gap >= lim_b else Severity.WARNING,
                        f"Standby {node} replays {lag_s:.1f} s / {_mib(gap)} behind what it "
                        "received", evidence={**ev, "threshold_s": lim_s, "threshold_bytes": lim_b},
                        suggestion=f"On {node}: long queries may hold replay back (SELECT pid, "
                        "query_start, query FROM pg_stat_activity WHERE state = 'active' ORDER "
                        "BY query_start;); check its disk and CPU.")

    def _slots(self, run: Run, node: str, q: dict[str, Any]) -> None:
        got = rows(run, "slots", "replication", "pg_replication_slots", q) or []
        keep = setting_num(run, "max_slot_wal_keep_size")
        held = th(run, "slot_retained_wal_bytes")
        run.metric("replication.slots", len(got))
        for r in got:
            name = r["slot_name"]
            ev = {"node": node, "slot": name, "type": r["slot_type"], "plugin": r["plugin"],
                  "database": r["database"], "active": r["active"], "wal_status": r["wal_status"],
                  "retained_wal_bytes": r["retained_bytes"], "safe_wal_size": r["safe_wal_size"],
                  "max_slot_wal_keep_size_mb": keep}
            drop = f"SELECT pg_drop_replication_slot({quote_literal(name)});"
            if r["wal_status"] == "lost":
                run.finding("postgres.replication.slot_lost", Severity.CRITICAL,
                            f"Slot {name} on {node} lost the WAL its consumer needs",
                            evidence=ev, suggestion="Its consumer can no longer catch up: "
                            f"rebuild it (a standby: pg_basebackup again), then {drop} "
                            "(action drop_replication_slot)")
                continue
            if r["active"]:
                continue
            retained = int(r["retained_bytes"] or 0)
            sev = (Severity.CRITICAL if retained >= held or r["wal_status"] == "unreserved"
                   else Severity.WARNING)
            run.finding("postgres.replication.slot_inactive", sev,
                        f"Slot {name} on {node} is inactive and holds {_mib(retained)} of WAL "
                        f"(wal_status {r['wal_status']})", evidence=ev,
                        suggestion="An inactive slot keeps WAL until the disk fills: start its "
                        f"consumer, or drop it: {drop} (action drop_replication_slot)"
                        + ("; cap it: ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; "
                           "SELECT pg_reload_conf();" if keep is not None and keep < 0 else ""))
