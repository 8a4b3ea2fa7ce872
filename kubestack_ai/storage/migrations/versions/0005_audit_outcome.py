"""The audit log's outcome and task id as columns: an action whose process died keeps the
row it wrote before it ran (``started``); the worker closes it by task id (``killed``) and
a sweep closes what is left (``abandoned``), both through an index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from kubestack_ai.storage.migrations.coltypes import key as _key

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ksa_audit") as b:
        b.add_column(sa.Column("outcome", sa.String(16), nullable=True))
        b.add_column(sa.Column("task_id", _key(), nullable=True))
    # the rows before: the outcome is in the record (JSON written with sorted keys)
    op.execute("UPDATE ksa_audit SET outcome = CASE"
               " WHEN record LIKE '%\"outcome\": \"started\"%' THEN 'started'"
               " WHEN record LIKE '%\"outcome\": \"refused\"%' THEN 'refused'"
               " WHEN ok THEN 'succeeded' ELSE 'failed' END")
    op.create_index("ix_ksa_audit_outcome_at", "ksa_audit", ["outcome", "at"])
    op.create_index("ix_ksa_audit_task", "ksa_audit", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_ksa_audit_task", "ksa_audit")
    op.drop_index("ix_ksa_audit_outcome_at", "ksa_audit")
    with op.batch_alter_table("ksa_audit") as b:
        b.drop_column("task_id")
        b.drop_column("outcome")
