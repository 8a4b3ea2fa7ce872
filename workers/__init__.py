"""The Celery app of KubeStack AI: ``celery -A workers worker`` (prefork only).

See workers/app.py for the configuration and workers/runtime.py for what a task does.
"""

from __future__ import annotations

from .app import create_app

app = create_app()

__all__ = ["app", "create_app"]
