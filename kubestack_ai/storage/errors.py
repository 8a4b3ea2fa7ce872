"""Errors of the storage layer.

    StorageError                    root: anything the store could not do
    ├── StorageUnavailable          the database cannot be reached (down, refused,
    │                               locked past the busy timeout); retry later
    │   └── SchemaMissing           reached, but its schema is not created or upgraded
    │                               yet (a database that was down at start): a run is
    │                               kept in the spool until a migration, not set aside
    └── MigrationError              the schema could not be created or upgraded

Messages name the database by its URL with the password masked, never the password.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error the store raises."""


class StorageUnavailable(StorageError):
    """The database cannot be reached. Transient: the same store recovers when it is back."""


class SchemaMissing(StorageUnavailable):
    """The database answers without our schema (or with an older one): ``Store.migrate()``
    (a worker's start, ``ksa run``, any ``ksa`` command that opens the store) makes it
    usable; until then it is as unusable as a database that is down."""


class MigrationError(StorageError):
    """The schema could not be created or upgraded."""
