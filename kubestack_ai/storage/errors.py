"""Errors of the storage layer.

    StorageError                    root: anything the store could not do
    ├── StorageUnavailable          the database cannot be reached (down, refused,
    │                               locked past the busy timeout); retry later
    └── MigrationError              the schema could not be created or upgraded

Messages name the database by its URL with the password masked, never the password.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error the store raises."""


class StorageUnavailable(StorageError):
    """The database cannot be reached. Transient: the same store recovers when it is back."""


class MigrationError(StorageError):
    """The schema could not be created or upgraded."""
