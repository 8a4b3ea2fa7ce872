"""The notifier: reads the latest result of every target, sends on change.

Each ``poll()`` reads the targets whose latest row changed since the last poll (an
indexed query, not the fleet) and:

- Alertmanager: a target at ``min_severity`` or worse has an alert (labels ``alertname``,
  ``target``, ``type``, ``severity``; annotations with its worst findings' titles and
  suggestions), re-sent every ``resend`` with ``endsAt`` three resends ahead, so it stays
  active while we send and lapses by itself if the notifier dies; when the target is
  better again (or its severity changes), the old alert is sent with ``endsAt`` = now:
  resolved. A run that ends ``unknown`` (it could not tell) leaves the alert as it was.
- Webhooks: a POST on every status transition, and every ``repeat`` while a target stays
  at ``min_severity`` or worse.

A target that leaves the fleet (``remove``, from the beat that declared the new fleet)
has its alert resolved on the next poll and is forgotten: nothing more is sent about it.

The first poll after start learns the current statuses without posting transitions to
webhooks (a restart is not a change); Alertmanager gets the active alerts at once (its
alerts are idempotent).

- Canaries (given ``home``, $KSA_HOME): a plugin canary that ended itself
  (plugins/index/canary.py, ``auto-aborted``) is posted once to the webhooks
  (``event: canary_auto_aborted``) and sent to Alertmanager as ``KsaCanaryAborted``
  (lasting an hour); those that ended before the first poll are learnt, not posted.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kubestack_ai.plugins.models import Status, utcnow
from kubestack_ai.storage import StorageError, Store, TargetRecord

from .config import NotifyConfig
from .sender import Sender

log = logging.getLogger(__name__)

ALERTNAME = "KsaTargetUnhealthy"
OVERLAP = dt.timedelta(seconds=30)
"""Changed rows are read from this far before the last poll: writers' clocks may lag."""
_RANK = {str(s): int(s) for s in Status}


class Notifier:
    def __init__(self, store: Store, config: NotifyConfig, *, sender: Sender | None = None,
                 clock: Callable[[], float] = time.monotonic, home: Path | None = None) -> None:
        self.store = store
        self.home = home
        self._canaries: set[tuple[str, str]] | None = None
        """(plugin id, ended_at) of the self-ended canaries already known."""
        self.config = config
        self.sender = sender or Sender(config.timeout)
        self._clock = clock
        self._min = _RANK[config.min_severity]
        self._known: dict[str, TargetRecord] = {}
        self._alerts: dict[str, dict[str, str]] = {}
        """target key -> labels of the alert we keep firing for it."""
        self._hooked: dict[str, float] = {}
        """target key -> when the last webhook about it was sent (for repeat)."""
        self._since: dt.datetime | None = None
        self._last_resend = float("-inf")
        self._thread: threading.Thread | None = None
        self._removed: list[str] = []
        """Keys that left the fleet since the last poll (appended by the beat's thread)."""
        self._removed_lock = threading.Lock()
        self._stop = threading.Event()
        self._active_until = 0.0
        self._am = [r.model_copy(update={"url": f"{r.url.rstrip('/')}/api/v2/alerts"})
                    for r in config.alertmanager]
        """Alertmanager receivers, at its v2 alerts endpoint."""

    # -- one round ----------------------------------------------------------------------

    def poll(self) -> int:
        """Read what changed and queue what to send; returns how many messages were queued.
        A storage error is logged and the next poll tries again."""
        now = utcnow()
        try:
            rows = (self.store.all_targets() if self._since is None
                    else self.store.targets_changed(self._since - OVERLAP))
        except StorageError as e:
            log.warning("notify: cannot read the latest results: %s", e)
            return 0
        primed = self._since is not None
        self._since = now
        fire: list[dict[str, Any]] = self._gone(now)
        queued = 0
        for t in rows:
            old = self._known.get(t.target_key)
            if old is not None and old.run_id == t.run_id:
                continue
            self._known[t.target_key] = t
            if primed and (old is None or old.status != t.status):
                queued += self._webhook(t, old.status if old else None, repeat=False)
            fire += self._alert_change(t, now)
        mono = self._clock()
        if mono - self._last_resend >= self.config.resend:
            self._last_resend = mono
            fire += [self._alert(self._known[k], now, labels) for k, labels in self._alerts.items()
                     if k in self._known]
            for key in list(self._alerts):
                t = self._known[key]
                if mono - self._hooked.setdefault(key, mono) >= self.config.repeat:
                    queued += self._webhook(t, t.status, repeat=True)
        fire += self._canary_alerts(now)
        if fire:
            queued += self._post_alerts(fire)
        return queued

    def remove(self, keys: list[str]) -> None:
        """These targets left the fleet: resolve their alerts on the next poll and
        forget them. Safe to call from another thread."""
        with self._removed_lock:
            self._removed += keys

    def _gone(self, now: dt.datetime) -> list[dict[str, Any]]:
        with self._removed_lock:
            keys, self._removed = self._removed, []
        out = []
        for key in keys:
            self._known.pop(key, None)
            self._hooked.pop(key, None)
            labels = self._alerts.pop(key, None)
            if labels is not None:
                out.append({"labels": labels, "annotations": {
                    "summary": f"{labels['type']} target {labels['target']} left the fleet"},
                    "endsAt": now.isoformat()})
        return out

    def _canary_alerts(self, now: dt.datetime) -> list[dict[str, Any]]:
        """Canaries that ended themselves since the last poll: webhooks posted here, the
        Alertmanager alerts returned."""
        if self.home is None:
            return []
        from kubestack_ai.plugins.errors import PluginError  # noqa: PLC0415
        from kubestack_ai.plugins.index import canary  # noqa: PLC0415

        ended = []
        for f in sorted((self.home / "plugins").glob(f"*/{canary.FILE}")):
            try:
                state = canary.read(self.home, f.parent.name)
            except PluginError as e:
                log.warning("notify: %s", e)
                continue
            if state and state.get("state") == "auto-aborted":
                ended.append(state)
        keys = {(c["plugin_id"], str(c.get("ended_at"))) for c in ended}
        if self._canaries is None:  # the first poll learns, as it does statuses
            self._canaries = keys
            return []
        out = []
        for c in ended:
            key = (c["plugin_id"], str(c.get("ended_at")))
            if key in self._canaries:
                continue
            self._canaries.add(key)
            url = (f"{self.config.web_url.rstrip('/')}/plugins/{quote(c['plugin_id'])}/canary"
                   if self.config.web_url else None)
            body = {"event": "canary_auto_aborted", "plugin_id": c["plugin_id"],
                    "version": c["version"], "current_version": c["current_version"],
                    "ended_at": c.get("ended_at"), "reason": c.get("reason", ""), "url": url}
            for receiver in self.config.webhook:
                self.sender.post(receiver, body, f"canary {c['plugin_id']} ended itself",
                                 retries=self.config.retries)
            out.append({"labels": {"alertname": "KsaCanaryAborted", "plugin": c["plugin_id"],
                                   "version": c["version"], "severity": "warning"},
                        "annotations": {"summary": f"canary {c['plugin_id']} {c['version']} "
                                                   "ended itself",
                                        "description": c.get("reason", "")},
                        "startsAt": now.isoformat(),
                        "endsAt": (now + dt.timedelta(hours=1)).isoformat()})
        return out

    def _troubled(self, t: TargetRecord) -> bool:
        return _RANK.get(t.status, 0) >= self._min

    def _alert_change(self, t: TargetRecord, now: dt.datetime) -> list[dict[str, Any]]:
        out = []
        before = self._alerts.get(t.target_key)
        if self._troubled(t):
            want: dict[str, str] | None = _labels(t)
        elif t.status == "unknown":
            want = before  # a run that could not tell is no recovery: the alert stays
        else:
            want = None
        if before is not None and before != want:
            out.append(self._resolved(before, t, now))
            del self._alerts[t.target_key]
        if want is not None and before != want:
            self._alerts[t.target_key] = want
            out.append(self._alert(t, now))
        return out

    # -- payloads -----------------------------------------------------------------------

    def _url(self, t: TargetRecord) -> str | None:
        base = self.config.web_url
        return f"{base.rstrip('/')}/targets/{quote(t.target_key, safe='')}" if base else None

    def _alert(self, t: TargetRecord, now: dt.datetime,
               labels: dict[str, str] | None = None) -> dict[str, Any]:
        worst = [f for f in t.findings if _RANK.get(f["severity"], 0) >= self._min][:3]
        annotations = {
            "summary": f"{t.type} target {t.name} is {t.status}"
                       + (f": {t.worst_title}" if t.worst_title else ""),
            "description": " | ".join(f"{f['title']}. Do: {f['suggestion']}" for f in worst),
            "findings": ", ".join(f["code"] for f in t.findings),
        }
        alert: dict[str, Any] = {
            "labels": labels or _labels(t), "annotations": annotations,
            "startsAt": t.status_since.isoformat(),
            "endsAt": (now + dt.timedelta(seconds=3 * self.config.resend)).isoformat(),
        }
        url = self._url(t)
        if url:
            alert["generatorURL"] = url
            annotations["url"] = url
        return alert

    def _resolved(self, labels: dict[str, str], t: TargetRecord,
                  now: dt.datetime) -> dict[str, Any]:
        return {"labels": labels, "annotations": {
                    "summary": f"{t.type} target {t.name} is {t.status} now"},
                "endsAt": now.isoformat()}

    def _post_alerts(self, alerts: list[dict[str, Any]]) -> int:
        # one alert per label set: a change and a resend in the same poll are one alert
        alerts = list({tuple(sorted(a["labels"].items())): a for a in alerts}.values())
        for receiver in self._am:
            self.sender.post(receiver, alerts, f"{len(alerts)} alerts", retries=1)
        return len(self._am)

    def _webhook(self, t: TargetRecord, old: str | None, *, repeat: bool) -> int:
        if not self.config.webhook:
            return 0
        self._hooked[t.target_key] = self._clock()
        body = {"target": t.target_key, "name": t.name, "type": t.type, "old_status": old,
                "new_status": t.status, "status_since": t.status_since.isoformat(),
                "last_run": t.started_at.isoformat(), "outcome": t.outcome,
                "repeat": repeat, "findings": list(t.findings), "url": self._url(t)}
        for receiver in self.config.webhook:
            self.sender.post(receiver, body, f"webhook {t.target_key} {old}->{t.status}",
                             retries=self.config.retries)
        return len(self.config.webhook)

    # -- in the background --------------------------------------------------------------

    def tick(self) -> None:
        """Called by its host on every beat of its loop while it may send (the beat that
        holds the lock); starts the polling thread on first call. Polls stop when ticks
        stop (the host lost its lock or died) and resume with them."""
        self._active_until = self._clock() + max(3 * self.config.poll, 30.0)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ksa-notify", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._clock() < self._active_until:
                try:
                    self.poll()
                except Exception:  # never let the thread die: log and poll again later
                    log.exception("notify: poll failed")
            self._stop.wait(self.config.poll)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.sender.flush(5)
        self.sender.close()


def _labels(t: TargetRecord) -> dict[str, str]:
    return {"alertname": ALERTNAME, "target": t.name, "type": t.type, "severity": t.status}
