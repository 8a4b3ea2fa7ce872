"""Default thresholds of http-diagnostics (override per plugin config or per target)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LATENCY_MS_WARNING = 500.0
LATENCY_MS_CRITICAL = 2000.0
TLS_DAYS_WARNING = 14.0
TLS_DAYS_CRITICAL = 3.0
REQUEST_TIMEOUT_CAP = 5.0
"""Seconds: no single request waits longer, whatever the deadline left."""
BODY_EXCERPT = 2048
"""Bytes of a response body read (its text, cut to BODY_EVIDENCE, is the evidence)."""
BODY_EVIDENCE = 120
"""Characters of the response body kept as evidence (one line)."""


def _target_options() -> dict[str, Any]:
    # The options a target may set are the plugin config's options (plugin.yaml's
    # config_schema), per target: one schema, in the manifest.
    manifest = yaml.safe_load((Path(__file__).parent / "plugin.yaml").read_text("utf-8"))
    return dict(manifest["config_schema"]["properties"])


TARGET_OPTIONS: dict[str, Any] = _target_options()
