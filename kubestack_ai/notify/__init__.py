"""notify: tell people when a target's status changes (Alertmanager, webhooks).

The fleet file's ``notify:`` section configures it::

    notify:
      alertmanager: ["http://127.0.0.1:9093"]   # v2 API: one alert per target in trouble
      webhook:                                  # JSON POST on every status transition
        - https://hooks.example/ksa
        - {url: "https://hooks.example/private", bearer_token: "env:KSA_HOOK_TOKEN"}
      min_severity: warning                     # or critical
      repeat: 4h                                # webhook reminder while it lasts
      web_url: http://ksa.example:8080          # links in alerts (optional)

Where it is sent from: the beat that holds the beat lock, in a thread of its own. There
is exactly one such beat in a deployment (a second one stands by), it already reads the
fleet file the section lives in, and it is not on any diagnosis's path: workers only
write runs to storage, the notifier reads ``ksa_target_latest`` (changed rows by index)
and queues; each receiver has a queue and a sending thread of its own (sender.py), so a
receiver that is slow or down costs its own thread retries, never another receiver's
sends nor a worker's time. Sending from the workers would send once per worker child (and twice when
Celery redelivers); sending from ``ksa serve`` would send once per web replica, or never
when nobody runs it.

Imports storage (and plugins' models) only, like ``web``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import NotifyConfig

if TYPE_CHECKING:
    from .notifier import Notifier

__all__ = ["Notifier", "NotifyConfig"]


def __getattr__(name: str) -> Any:
    # the fleet file's parser needs NotifyConfig only: storage (SQLAlchemy) is imported
    # when a Notifier is made, not whenever a fleet file is read
    if name == "Notifier":
        from .notifier import Notifier

        return Notifier
    raise AttributeError(name)
