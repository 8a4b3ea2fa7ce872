"""postgres-diagnostics: the builtin PostgreSQL plugin (psycopg 3, imported on connect)."""

from __future__ import annotations

from ..builtins import register_builtin
from .plugin import PostgresPlugin

register_builtin("postgres-diagnostics", PostgresPlugin)

__all__ = ["PostgresPlugin"]
