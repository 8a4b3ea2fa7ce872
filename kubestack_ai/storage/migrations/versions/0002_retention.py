"""Retention: daily rollups per target, and the indexes pruning by age and count needs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Types are spelled out here (not imported from storage.models), as in 0001.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


def _key(length: int = 255) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"),
                                          "mysql", "mariadb")


def _when() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "ksa_rollup_daily",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("target_key", _key(), nullable=False),
        sa.Column("plugin_id", _key(128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("worst_status", sa.String(16), nullable=False),
        sa.Column("statuses", sa.Text(), nullable=False),
        sa.Column("findings", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"),
                  nullable=False),
        sa.Column("first_at", _when(), nullable=False),
        sa.Column("last_at", _when(), nullable=False),
        sa.UniqueConstraint("target_key", "plugin_id", "day", name="uq_ksa_rollup_daily_key"),
        **_MYSQL,
    )
    op.create_index("ix_ksa_run_started", "ksa_run", ["started_at"])
    op.create_index("ix_ksa_audit_target_at", "ksa_audit", ["target", "at"])


def downgrade() -> None:
    op.drop_index("ix_ksa_audit_target_at", "ksa_audit")
    op.drop_index("ix_ksa_run_started", "ksa_run")
    op.drop_table("ksa_rollup_daily")
