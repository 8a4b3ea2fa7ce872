"""Plugin state: the code locations a plugin was (re)loaded from, newest last.

``ksa plugin reload ID --from PATH`` appends PATH; ``ksa plugin rollback ID`` drops the
newest, so every worker child loads the one before from its next task.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ksa_plugin_state") as batch:
        batch.add_column(sa.Column(
            "sources", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ksa_plugin_state") as batch:
        batch.drop_column("sources")
