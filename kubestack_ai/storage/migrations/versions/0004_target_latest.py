"""The latest run of every target (ksa_target_latest), for the web view, /metrics and
notifications; filled from the history once, then kept by record_run.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kubestack_ai.storage.migrations.coltypes import MYSQL as _MYSQL
from kubestack_ai.storage.migrations.coltypes import key as _key
from kubestack_ai.storage.migrations.coltypes import long_text as _long_text
from kubestack_ai.storage.migrations.coltypes import when as _when

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ksa_target_latest",
        sa.Column("target_key", _key(), primary_key=True),
        sa.Column("type", _key(128), nullable=False),
        sa.Column("plugin_id", _key(128), nullable=False),
        sa.Column("run_id", _key(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("status_since", _when(), nullable=False),
        sa.Column("status_runs", sa.Integer(), nullable=False),
        sa.Column("started_ts", sa.Double(), nullable=False),
        sa.Column("prev_started_at", _when(), nullable=True),
        sa.Column("stale_ts", sa.Double(), nullable=True),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("worst_code", sa.String(255), nullable=True),
        sa.Column("worst_title", sa.Text(), nullable=True),
        sa.Column("findings", _long_text(), nullable=False),
        sa.Column("n_completed", sa.BigInteger(), nullable=False),
        sa.Column("n_timed_out", sa.BigInteger(), nullable=False),
        sa.Column("n_killed", sa.BigInteger(), nullable=False),
        sa.Column("n_failed", sa.BigInteger(), nullable=False),
        **_MYSQL,
    )
    op.create_index("ix_ksa_target_latest_rank", "ksa_target_latest", ["rank", "target_key"])
    op.create_index("ix_ksa_target_latest_updated", "ksa_target_latest", ["updated_at"])
    # From the existing history, in Python, by the same code record_run uses, so that
    # every column is computed alike on every backend.
    from kubestack_ai.storage._fleet import backfill  # noqa: PLC0415

    backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("ksa_target_latest")
