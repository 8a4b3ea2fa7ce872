"""tcp-diagnostics: the small, real plugin the framework's tests and docs use.

Diagnoses any TCP service: is every endpoint accepting connections, and how fast.
"""

from __future__ import annotations

from ..builtins import register_builtin
from .plugin import TcpPlugin

register_builtin("tcp-diagnostics", TcpPlugin)

__all__ = ["TcpPlugin"]
