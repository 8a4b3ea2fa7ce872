"""Initial schema: plugin state, result cache, run history, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Types come from migrations/coltypes.py (not from storage.models), so that this revision
keeps creating the same schema whatever the models become later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kubestack_ai.storage.migrations.coltypes import MYSQL as _MYSQL
from kubestack_ai.storage.migrations.coltypes import big_id as _id
from kubestack_ai.storage.migrations.coltypes import key as _key
from kubestack_ai.storage.migrations.coltypes import long_text as _long_text
from kubestack_ai.storage.migrations.coltypes import when as _when

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ksa_plugin_state",
        sa.Column("plugin_id", _key(128), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("config", _long_text(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        **_MYSQL,
    )
    op.create_table(
        "ksa_result_cache",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("target_key", _key(), nullable=False),
        sa.Column("plugin_id", _key(128), nullable=False),
        sa.Column("categories", _key(), nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.Column("result", _long_text(), nullable=False),
        sa.UniqueConstraint("target_key", "plugin_id", "categories",
                            name="uq_ksa_result_cache_key"),
        **_MYSQL,
    )
    op.create_index("ix_ksa_result_cache_expires_at", "ksa_result_cache", ["expires_at"])
    op.create_table(
        "ksa_run",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("run_id", _key(), nullable=False),
        sa.Column("target_key", _key(), nullable=False),
        sa.Column("plugin_id", _key(128), nullable=False),
        sa.Column("categories", _key(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("started_at", _when(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("recorded_at", _when(), nullable=False),
        sa.Column("result", _long_text(), nullable=False),
        sa.UniqueConstraint("run_id", name="uq_ksa_run_run_id"),
        **_MYSQL,
    )
    op.create_index("ix_ksa_run_target_started", "ksa_run", ["target_key", "started_at"])
    op.create_index("ix_ksa_run_target_plugin_started", "ksa_run",
                    ["target_key", "plugin_id", "started_at"])
    op.create_table(
        "ksa_audit",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("at", _when(), nullable=False),
        sa.Column("plugin_id", _key(128), nullable=False),
        sa.Column("target", _key(), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("record", _long_text(), nullable=False),
        **_MYSQL,
    )
    op.create_index("ix_ksa_audit_at", "ksa_audit", ["at"])


def downgrade() -> None:
    op.drop_table("ksa_audit")
    op.drop_table("ksa_run")
    op.drop_table("ksa_result_cache")
    op.drop_table("ksa_plugin_state")
