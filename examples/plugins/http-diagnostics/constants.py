"""Default thresholds of http-diagnostics (override per plugin config or per target)."""

from __future__ import annotations

LATENCY_MS_WARNING = 500.0
LATENCY_MS_CRITICAL = 2000.0
TLS_DAYS_WARNING = 14.0
TLS_DAYS_CRITICAL = 3.0
REQUEST_TIMEOUT_CAP = 5.0
"""Seconds: no single request waits longer, whatever the deadline left."""
BODY_EXCERPT = 200
