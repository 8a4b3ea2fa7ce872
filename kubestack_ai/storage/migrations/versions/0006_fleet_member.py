"""The fleet's members: which targets the fleet file declares (the view shows those and
sets one-off runs apart), with each one's interval and endpoints.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kubestack_ai.storage.migrations.coltypes import MYSQL, key, long_text, when

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ksa_fleet_member",
        sa.Column("target_key", key(), primary_key=True),
        sa.Column("type", key(128), nullable=False),
        sa.Column("endpoints", long_text(), nullable=False),
        sa.Column("interval_s", sa.Double(), nullable=False),
        sa.Column("declared_at", when(), nullable=False),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("ksa_fleet_member")
