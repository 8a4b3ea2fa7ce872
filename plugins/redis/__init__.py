"""redis-diagnostics: the builtin Redis plugin (redis-py is imported on connect only)."""

from __future__ import annotations

from ..loader import register_builtin
from .plugin import RedisPlugin

register_builtin("redis-diagnostics", RedisPlugin)

__all__ = ["RedisPlugin"]
