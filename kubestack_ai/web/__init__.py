"""web: the fleet's read-only web view over storage (``ksa serve``).

    /                                  the fleet at a glance (counts, filters, auto-refresh)
    /targets/<key>                     one target: findings, timeline, runs, audit log
    /api/targets[?status=&type=&q=&limit=&offset=]   the fleet as JSON
    /api/targets/<key>                 one target as JSON (latest result included)
    /api/targets/<key>/history         its runs, newest first
    /plugins, /api/plugins             every plugin: where it runs, its isolation layers
    /metrics                           Prometheus exposition (prometheus_client)

Built on Tornado (installed already: Flower runs on it) with its own templates; the
pages need nothing from the internet. It reads ``storage`` (and resolves secret
references with ``plugins.secrets``); it imports nothing from workers or scheduler.
"""

from __future__ import annotations

from .app import make_app
from .auth import WebAuth, WebError
from .server import serve

__all__ = ["WebAuth", "WebError", "make_app", "serve"]
