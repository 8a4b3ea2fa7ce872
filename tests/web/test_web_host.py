"""``ksa serve`` answers only for the hosts it serves (issue 20 item 9): a page of another
site whose name was re-bound to 127.0.0.1 (DNS rebinding) sends its own name as Host and
is refused, with a message saying how to allow a name."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from kubestack_ai.storage import Store

from .conftest import web_view


def get(url: str, host: str, path: str = "/api/targets") -> tuple[int, str]:
    hostport = url.removeprefix("http://")
    conn = http.client.HTTPConnection(hostport, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('host') / 'ksa.db'}"
    Store(url).migrate()
    return url


def test_only_the_hosts_it_serves_are_answered(db: str, tmp_path: Path) -> None:
    with web_view(db, tmp_path) as w:
        port = w.url.rsplit(":", 1)[1]
        for ok in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}",
                   f"app.localhost:{port}", f"LOCALHOST.:{port}"):
            assert get(w.url, ok)[0] == 200, ok
        for path in ("/api/targets", "/", "/metrics", "/targets/redis%3Ax"):
            code, body = get(w.url, f"rebind.attacker.example:{port}", path)
            assert code == 400, path
            assert body == (
                "Host 'rebind.attacker.example' is not served here (a guard against DNS "
                "rebinding): allow it with ksa serve --allowed-host rebind.attacker.example "
                "or KSA_ALLOWED_HOSTS=rebind.attacker.example\n")
        assert get(w.url, f"10.1.2.3:{port}")[0] == 400  # bound to 127.0.0.1, not 10.1.2.3
        assert get(w.url, "evil\x1b.example")[0] == 400


def test_allowed_hosts_by_option_and_environment(db: str, tmp_path: Path) -> None:
    with web_view(db, tmp_path, "--allowed-host", "ksa.example.com",
                  env={"KSA_ALLOWED_HOSTS": "ops.example, .fleet.example"}) as w:
        for ok in ("ksa.example.com:8080", "ops.example", "a.fleet.example", "fleet.example"):
            assert get(w.url, ok)[0] == 200, ok
        for bad in ("ksa.example.com.evil", "xops.example", "fleet.example.evil"):
            assert get(w.url, bad)[0] == 400, bad


def test_bound_to_every_address_any_ip_passes_and_star_turns_the_check_off(
        db: str, tmp_path: Path) -> None:
    env = {"KSA_TEST_WEB_TOKEN": "t0ken"}
    with web_view(db, tmp_path, "--host", "0.0.0.0", "--token-ref", "env:KSA_TEST_WEB_TOKEN",
                  env=env) as w:
        assert get(w.url, "10.1.2.3:8080")[0] == 401  # past the Host check, to the token's
        assert get(w.url, "rebind.attacker.example")[0] == 400
    with web_view(db, tmp_path, "--allowed-host", "*") as w:
        assert get(w.url, "rebind.attacker.example")[0] == 200
