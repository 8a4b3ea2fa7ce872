"""Checkpoints and WAL: requested against timed checkpoints over the recent window (the
postgres_mixin rule: timed share below half), the WAL written rate, and the
``max_wal_size`` that would keep checkpoints timed."""

from __future__ import annotations

from ...base import Run, category
from ...models import Severity
from .common import moving_evidence, pct, rate, setting_num, th


def queries(run: Run) -> list[tuple[str, str]]:
    return []


class CheckpointChecks:
    @category("checkpoints")
    def check_checkpoints(self, run: Run) -> None:
        timed, req, wal = rate(run, "checkpoints_timed"), rate(run, "checkpoints_req"), rate(run, "wal_bytes")
        run.metric("checkpoints.timed", int(timed.total))
        run.metric("checkpoints.requested", int(req.total))
        if wal.per_second is not None:
            run.metric("checkpoints.wal_bytes_per_second", round(wal.per_second, 1))
        if timed.delta is None or req.delta is None:
            return
        n = timed.delta + req.delta
        share = pct(req.delta, n)
        if n < th(run, "min_checkpoints_for_ratio") or share < th(run, "checkpoints_requested_pct"):
            return
        max_wal_mb = setting_num(run, "max_wal_size") or 1024
        timeout_s = setting_num(run, "checkpoint_timeout") or 300
        ev = {**moving_evidence(timed, req), "requested_pct": share,
              "max_wal_size_mb": int(max_wal_mb), "checkpoint_timeout_s": int(timeout_s)}
        if wal.per_second:
            # WAL written over one checkpoint_timeout, doubled: checkpoints spread over
            # checkpoint_completion_target and the WAL of two cycles is kept
            need = int(wal.per_second * timeout_s * 2 / 1048576) + 1
            ev["wal_bytes_per_second"] = round(wal.per_second, 1)
            ev["suggested_max_wal_size_mb"] = need
            size = max(need, int(max_wal_mb) * 2)
        else:
            size = int(max_wal_mb) * 2
        advice = f"ALTER SYSTEM SET max_wal_size = '{size}MB'; SELECT pg_reload_conf();"
        run.finding("postgres.checkpoints.requested_high", Severity.WARNING,
                    f"{share}% of checkpoints were requested (max_wal_size filled, or a "
                    f"CHECKPOINT command) {req.window_text()}", evidence=ev,
                    suggestion=f"{advice} Requested checkpoints write more full-page images and "
                    "more I/O than timed ones.")
