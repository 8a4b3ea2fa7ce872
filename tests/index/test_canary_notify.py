"""A canary that ended itself is posted once to the webhooks and to Alertmanager's API
(a real HTTP receiver records the posts)."""

from __future__ import annotations

from pathlib import Path

from kubestack_ai.notify import Notifier, NotifyConfig
from kubestack_ai.plugins.index import canary
from kubestack_ai.storage import Store
from tests.web.test_notify import Receiver


def test_self_ended_canary_is_notified_once(tmp_path: Path) -> None:
    rec = Receiver()
    store = Store(f"sqlite:///{tmp_path}/ksa.db")
    store.migrate()
    home = tmp_path / "home"
    (home / "plugins" / "fx").mkdir(parents=True)
    state = {"plugin_id": "fx", "version": "2.0.0", "current_version": "1.0.0", "share": 10,
             "state": "running", "started_at": canary.now_iso()}
    canary.write(home, "fx", state)
    n = Notifier(store, NotifyConfig(webhook=(rec.url + "/hook",), alertmanager=(rec.url,),
                                     web_url="http://ksa.example"), home=home)
    try:
        n.poll()  # learns
        canary.end(home, "fx", "auto-aborted", "fx 2.0.0 failed 5 of 5 runs")
        n.poll()
        n.poll()  # once only
        assert n.sender.flush(10)
        hooks = [b for p, b in rec.posts if p == "/hook"]
        alerts = [a for p, b in rec.posts if p == "/api/v2/alerts" for a in b]
        assert len(hooks) == 1 and hooks[0]["event"] == "canary_auto_aborted"
        assert (hooks[0]["plugin_id"], hooks[0]["reason"], hooks[0]["url"]) == (
            "fx", "fx 2.0.0 failed 5 of 5 runs", "http://ksa.example/plugins/fx/canary")
        assert [a["labels"]["alertname"] for a in alerts] == ["KsaCanaryAborted"]
    finally:
        n.close()
        rec.close()
        store.dispose()
