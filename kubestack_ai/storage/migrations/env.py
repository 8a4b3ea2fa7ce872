"""Alembic environment: always run programmatically by ``storage.migrate.upgrade``.

The caller passes an open connection (inside a transaction that already holds the
migration lock) as ``config.attributes["connection"]``; there is no alembic.ini and no
offline mode.
"""

from __future__ import annotations

from alembic import context

from kubestack_ai.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("storage migrations run through Store.migrate(), not the alembic command")

context.configure(connection=connection, target_metadata=Base.metadata,
                  version_table="ksa_alembic_version")
with context.begin_transaction():
    context.run_migrations()
