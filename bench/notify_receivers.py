"""How long an alert takes to reach a real Alertmanager while two webhooks misbehave
beside it (issue 20 item 4): one hangs, one answers a byte every 3 s.

    PYTHONPATH=. .venv/bin/python bench/notify_receivers.py [--runs 3] [--poll 1]

Starts ``prometheus-alertmanager`` on a free port, records a healthy then a critical run
of one target, and times from the critical run to the alert being listed by
Alertmanager's API. Before each receiver had its own queue the alert waited behind the
webhooks' retries (and, behind the trickling one, for ever); now it is one poll.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from kubestack_ai.notify import Notifier, NotifyConfig
from kubestack_ai.plugins.models import Status
from tests.conftest import free_port
from tests.web.test_notify_receivers import SlowServer, _critical_store


def once(poll: float) -> float:
    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    (tmp / "am.yml").write_text(json.dumps({"route": {"receiver": "n"},
                                            "receivers": [{"name": "n"}]}))
    am = subprocess.Popen(["prometheus-alertmanager", f"--config.file={tmp / 'am.yml'}",
                           f"--storage.path={tmp / 'am'}", f"--web.listen-address=127.0.0.1:{port}",
                           "--cluster.listen-address="], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    hang, trickle = SlowServer(None), SlowServer(3.0)
    store, run = _critical_store(tmp)
    n = Notifier(store, NotifyConfig(alertmanager=(url,), webhook=(hang.url, trickle.url),
                                     min_severity="critical", poll=poll, resend=1))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        run(1, Status.HEALTHY)
        n.tick()
        while n._since is None:
            time.sleep(0.05)
        run(2, Status.CRITICAL)
        t0 = time.monotonic()
        while not json.loads(urllib.request.urlopen(url + "/api/v2/alerts", timeout=5).read()):
            time.sleep(0.05)
        return time.monotonic() - t0
    finally:
        n._stop.set()
        n.sender.close()
        hang.close()
        trickle.close()
        am.terminate()
        am.wait()
        store.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--poll", type=float, default=1.0)
    a = ap.parse_args()
    took = [once(a.poll) for _ in range(a.runs)]
    print(f"alert in Alertmanager after {min(took):.2f}-{max(took):.2f} s (poll {a.poll:g} s), "
          "beside a hanging and a one-byte-every-3-s webhook")


if __name__ == "__main__":
    main()
