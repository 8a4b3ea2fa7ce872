"""The Celery app of KubeStack AI: ``celery -A kubestack_ai.workers worker`` (prefork only).

``workers.app`` is built on first access (from the environment, see workers/settings.py)
and registers every task then, before any message is consumed. Importing a submodule
(``workers.settings``) builds nothing. See workers/factory.py for the configuration and
workers/runtime.py for what a task does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    app: Celery

_app: Any = None


def __getattr__(name: str) -> Any:
    global _app
    if name == "app":
        if _app is None:
            from .factory import create_app  # noqa: PLC0415 (submodules build nothing)

            _app = create_app()
        return _app
    raise AttributeError(f"module 'workers' has no attribute {name!r}")


__all__ = ["app", "create_app"]
