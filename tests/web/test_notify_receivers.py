"""Each receiver on its own: a hanging webhook and one that answers a byte every 3 s sit
beside a real Alertmanager, which still gets its alert within one poll and keeps it
active; a send has a total deadline; POST redirects; credentials by reference."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubestack_ai.notify import Notifier, NotifyConfig
from kubestack_ai.notify.sender import Sender
from kubestack_ai.plugins.models import DiagnosticResult, Finding, Severity, Status, utcnow
from kubestack_ai.scheduler import FleetError
from kubestack_ai.scheduler.fleet import parse_fleet
from kubestack_ai.storage import Store

from .conftest import until
from .test_notify import _am_alerts, alertmanager, receiver  # noqa: F401  (fixtures)


class SlowServer:
    """A receiver that never finishes answering: ``trickle`` None reads the request and
    says nothing; a number sends a response one byte every ``trickle`` seconds, for ever
    (headers that never end), so no per-read time-out ever fires."""

    def __init__(self, trickle: float | None) -> None:
        self.trickle = trickle
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            reply = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"x" * 10_000
            for byte in reply:
                if self._stop.wait(self.trickle if self.trickle is not None else 3600):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def hanging() -> Iterator[SlowServer]:
    s = SlowServer(None)
    yield s
    s.close()


@pytest.fixture
def trickling() -> Iterator[SlowServer]:
    s = SlowServer(3.0)
    yield s
    s.close()


def _critical_store(tmp_path: Path) -> tuple[Store, Any]:
    store = Store(f"sqlite:///{tmp_path / 'ksa.db'}")
    store.migrate()
    oom = Finding(code="redis.memory.oom", category="memory", severity=Severity.CRITICAL,
                  title="Out of memory", evidence={"used": 1}, suggestion="Raise maxmemory.")

    def run(i: int, status: Status) -> None:
        store.record_run(f"s{i}", "redis:cache-1", "redis-diagnostics", (), DiagnosticResult(
            plugin_id="redis-diagnostics", target_name="cache-1", status=status,
            started_at=utcnow(), duration=0.01,
            findings=[oom] if status is Status.CRITICAL else []), ttl=None)
    return store, run


def test_slow_webhooks_never_delay_alertmanager(tmp_path: Path, alertmanager: str,  # noqa: F811
                                                hanging: SlowServer,
                                                trickling: SlowServer) -> None:
    store, run = _critical_store(tmp_path)
    config = NotifyConfig(alertmanager=(alertmanager,),
                          webhook=(f"{hanging.url}/hook", f"{trickling.url}/hook"),
                          min_severity="critical", poll=1, resend=1, timeout=5, retries=3)
    n = Notifier(store, config)
    try:
        run(1, Status.HEALTHY)
        n.tick()
        until(lambda: n._since is not None, 5)  # the first poll learnt the status
        run(2, Status.CRITICAL)
        t0 = time.monotonic()
        # both webhooks get the transition first (queued before the alert), and hang
        until(lambda: hanging.accepted and trickling.accepted, config.poll + 2)
        alerts = until(lambda: _am_alerts(alertmanager), config.poll + 1)
        assert time.monotonic() - t0 <= config.poll + 1
        assert [a["labels"]["target"] for a in alerts] == ["cache-1"]
        # it stays active while the target stays critical: resends keep reaching it
        # while both webhooks are still being retried (4 attempts of 5 s each)
        end = time.monotonic() + 3 * config.resend + 2
        while time.monotonic() < end:
            n.tick()
            [alert] = _am_alerts(alertmanager)
            assert alert["status"]["state"] == "active"
            ends = dt.datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
            assert ends > dt.datetime.now(dt.UTC)
            time.sleep(0.5)
    finally:
        n._stop.set()
        n.sender.close()
        store.dispose()


def test_a_trickling_receiver_is_cut_at_the_deadline(trickling: SlowServer,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    sender = Sender(timeout=4)
    try:
        t0 = time.monotonic()
        with caplog.at_level("WARNING", logger="kubestack_ai.notify"):
            sender.post(f"{trickling.url}/hook", {"x": 1}, "webhook t", retries=0)
            assert sender.flush(8), "a byte every 3 s kept the send alive past its deadline"
        took = time.monotonic() - t0
        assert 4 <= took < 5.5
        assert sender.failed == 1 and sender.sent == 0
        assert f"webhook t to {trickling.url} failed after 1 attempts: " \
               "no complete answer within 4 s" in caplog.text
    finally:
        sender.close()


class Hooks:
    """Records POSTs and GETs; paths starting /moved-NNN answer NNN to /hook."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any, str | None]] = []
        self.moved_to = ""
        """Where /moved-NNN points: this server (""), or another one's URL."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                outer.seen.append((self.command, self.path, body,
                                   self.headers.get("Authorization")))
                if self.path.startswith("/moved-"):
                    self.send_response(int(self.path.split("-")[1]))
                    self.send_header("Location", outer.moved_to + "/hook")
                elif self.path == "/private" and self.headers.get("Authorization") is None:
                    self.send_response(401)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_GET = _handle  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.close()


def test_post_redirects_307_308_re_post_others_fail(hooks: Hooks,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    sender = Sender(timeout=5)
    try:
        with caplog.at_level("WARNING", logger="kubestack_ai.notify"):
            for code in (307, 308, 302, 301, 303):
                sender.post(f"{hooks.url}/moved-{code}", {"code": code}, f"webhook {code}")
            assert sender.flush(10)
        assert sender.sent == 2 and sender.failed == 3
        # each URL is a receiver of its own, sent in parallel: in no particular order
        assert sorted([(m, p, b["code"]) for m, p, b, _ in hooks.seen if p == "/hook"]) == [
            ("POST", "/hook", 307), ("POST", "/hook", 308)]
        for code in (302, 301, 303):
            assert (f"webhook {code} to {hooks.url} failed after 1 attempts: HTTP {code} "
                    f"redirect to {hooks.url} not followed (a POST is re-sent on 307 and "
                    "308 only)") in caplog.text
    finally:
        sender.close()


def test_receiver_credentials_by_reference_never_logged(
        hooks: Hooks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("KSA_HOME", str(tmp_path))
    monkeypatch.setenv("KSA_TEST_HOOK_PASSWORD", "HookPw_K3y")
    (tmp_path / "secrets").mkdir(mode=0o700)
    token = tmp_path / "secrets" / "hook_token"
    token.write_text("T0ken-abc\n")
    token.chmod(0o600)
    config = NotifyConfig.model_validate({"webhook": [
        {"url": f"{hooks.url}/private",
         "basic_auth": {"username": "hookuser", "password": "env:KSA_TEST_HOOK_PASSWORD"}},
        {"url": f"{hooks.url}/private", "bearer_token": f"file:{token}"},
        {"url": f"{hooks.url}/private", "bearer_token": "env:KSA_TEST_HOOK_MISSING_TOKEN"},
    ]})
    sender = Sender(timeout=5)
    try:
        with caplog.at_level("DEBUG", logger="kubestack_ai.notify"):
            for r in config.webhook:
                sender.post(r, {"x": 1}, "webhook auth", retries=0)
            assert sender.flush(10)
        basic = "Basic " + base64.b64encode(b"hookuser:HookPw_K3y").decode()
        assert sorted(a for _, _, _, a in hooks.seen) == [basic, "Bearer T0ken-abc"]
        assert sender.sent == 2 and sender.failed == 1
        assert ("webhook auth to " + hooks.url + " failed after 1 attempts: secret reference "
                "'env:KSA_TEST_HOOK_MISSING_TOKEN'") in caplog.text
        for secret in ("HookPw_K3y", "T0ken-abc", basic.split()[1]):
            assert secret not in caplog.text
        token.write_text("T0ken-rotated\n")  # resolved at each send: a rotation is picked up
        sender.post(config.webhook[1], {"x": 2}, "webhook auth", retries=0)
        assert sender.flush(10)
        assert hooks.seen[-1][3] == "Bearer T0ken-rotated"
    finally:
        sender.close()


def test_credentials_in_a_receiver_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(FleetError) as e:
        parse_fleet({"targets": [], "notify": {
            "webhook": ["http://hookuser:HookPw_K3y@127.0.0.1:9/hook"]}})
    msg = str(e.value)
    assert "HookPw_K3y" not in msg and "hookuser" not in msg
    assert ("notify.webhook.0.url: Value error, credentials in a receiver URL are not accepted "
            "(http://127.0.0.1:9): give basic_auth: {username, password: env:NAME} "
            "or bearer_token: env:NAME") in msg
    with pytest.raises(FleetError, match=r"notify.alertmanager.0.bearer_token: Value error, "
                                         r"bearer_token must be a secret reference"):
        parse_fleet({"targets": [], "notify": {"alertmanager": [
            {"url": "http://127.0.0.1:9093", "bearer_token": "literal-token"}]}})
    with pytest.raises(FleetError, match="basic_auth or bearer_token, not both"):
        parse_fleet({"targets": [], "notify": {"alertmanager": [
            {"url": "http://127.0.0.1:9093", "bearer_token": "env:X",
             "basic_auth": {"username": "u", "password": "env:Y"}}]}})


def test_a_redirect_to_another_origin_gets_no_credentials(
        hooks: Hooks, monkeypatch: pytest.MonkeyPatch) -> None:
    other = Hooks()
    monkeypatch.setenv("KSA_TEST_HOOK_PASSWORD", "HookPw_K3y")
    hooks.moved_to = other.url
    sender = Sender(timeout=5)
    try:
        for where in (f"{hooks.url}/moved-307", f"{hooks.url}/hook"):
            sender.post(NotifyConfig.model_validate({"webhook": [{"url": where, "basic_auth": {
                "username": "hookuser", "password": "env:KSA_TEST_HOOK_PASSWORD"}}]}).webhook[0],
                {"x": 1}, "webhook")
        assert sender.flush(10) and sender.sent == 2
        assert [(p, a is not None) for _, p, _, a in other.seen] == [("/hook", False)]
        assert [(p, a is not None) for _, p, _, a in sorted(hooks.seen)] == [
            ("/hook", True), ("/moved-307", True)]
    finally:
        sender.close()
        other.close()
