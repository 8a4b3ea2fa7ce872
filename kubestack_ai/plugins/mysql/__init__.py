"""mysql-diagnostics: the builtin MySQL / MariaDB plugin (PyMySQL, imported on connect)."""

from __future__ import annotations

from ..builtins import register_builtin
from .plugin import MySQLPlugin

register_builtin("mysql-diagnostics", MySQLPlugin)

__all__ = ["MySQLPlugin"]
