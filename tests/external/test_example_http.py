"""The example external plugin (examples/plugins/http-diagnostics) against real HTTP(S)
servers started here on free loopback ports."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubestack_ai.plugins import TLS, MiddlewareTarget, PluginManager, Severity, Status

from .util import EXAMPLES, free_port, require

NOT_FOUND = (b"<!DOCTYPE html>\n<html>\n  <head><title>404 Not Found</title></head>\n"
             b"  <body>\n    <h1>Not Found</h1>\n    <p>The requested URL was not found on "
             b"this server.</p>\n" + b"    <p>padding padding padding</p>\n" * 10
             + b"  </body>\n</html>\n")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.12)
        status = {"/down": 503, "/healthz": 200, "/slow": 200}.get(self.path, 404)
        body = {503: b'{"db": "unreachable"}', 200: b"ok"}.get(status, NOT_FOUND)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(ctx: ssl.SSLContext | None = None) -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if ctx is not None:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)


@pytest.fixture(scope="module")
def http_endpoint() -> Iterator[str]:
    yield from serve()


@pytest.fixture(scope="module")
def tls_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    require(shutil.which("openssl") is not None, "openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    for ep in serve(ctx):
        yield ep, d / "cert.pem"


@pytest.fixture(scope="module")
def http_manager() -> Iterator[PluginManager]:
    m = PluginManager()
    assert m.load_external([EXAMPLES], entry_points=False) == []
    yield m
    m.stop_all()


def test_healthy_endpoint(http_manager: PluginManager, http_endpoint: str) -> None:
    r = http_manager.diagnose(MiddlewareTarget(type="http", endpoints=(http_endpoint,)))
    assert r.status is Status.HEALTHY and r.findings == [] and r.errors == {}
    assert r.plugin_id == "http-diagnostics" and r.metrics["status_code"] == 200
    assert r.categories == ("availability", "latency", "tls")
    # config_schema defaults were filled before init
    assert http_manager.registry.entry("http-diagnostics").config.options == {
        "path": "/healthz", "expected_status": [200], "samples": 3}


def test_unexpected_status_is_critical_with_body(http_manager: PluginManager,
                                                 http_endpoint: str) -> None:
    r = http_manager.diagnose(MiddlewareTarget(type="http", endpoints=(http_endpoint,),
                                               options={"path": "/down"}))
    [f] = r.findings
    assert f.code == "http.availability.unexpected_status" and f.severity is Severity.CRITICAL
    assert f.evidence == {"status": 503, "expected": [200], "body": '{"db": "unreachable"}'}


def test_slow_endpoint(http_manager: PluginManager, http_endpoint: str) -> None:
    r = http_manager.diagnose(MiddlewareTarget(
        type="http", endpoints=(http_endpoint,), options={"path": "/slow"},
        thresholds={"latency_ms_warning": 50, "latency_ms_critical": 5000}),
        categories_only("latency"))
    [f] = r.findings
    assert f.code == "http.latency.slow" and f.severity is Severity.WARNING
    assert f.evidence["threshold_ms"] == 50 and f.evidence["samples"] == 3
    assert f.evidence["median_ms"] >= 120


def test_unreachable_is_a_finding(http_manager: PluginManager) -> None:
    r = http_manager.diagnose(MiddlewareTarget(type="http",
                                               endpoints=(f"127.0.0.1:{free_port()}",)))
    assert r.status is Status.CRITICAL
    assert [f.code for f in r.findings] == ["http.connection.unreachable"]


def test_tls_certificate_expiring(http_manager: PluginManager,
                                  tls_endpoint: tuple[str, Path]) -> None:
    ep, ca = tls_endpoint
    r = http_manager.diagnose(MiddlewareTarget(type="http", endpoints=(ep,),
                                               tls=TLS(ca_file=str(ca))))
    assert r.errors == {}, r.errors
    [f] = r.findings
    assert f.code == "http.tls.expiring" and f.severity is Severity.CRITICAL
    assert 1.9 < f.evidence["days_left"] <= 2 and f.evidence["threshold_days"] == 3.0


def categories_only(*cats: str):
    from kubestack_ai.plugins import DiagnoseOptions

    return DiagnoseOptions(categories=cats)


def test_an_html_error_page_is_one_readable_line_of_evidence(http_manager: PluginManager,
                                                             http_endpoint: str) -> None:
    r = http_manager.diagnose(MiddlewareTarget(type="http", endpoints=(http_endpoint,),
                                               options={"path": "/nope"}),
                              categories_only("availability"))
    [f] = r.findings
    assert f.severity is Severity.WARNING and f.evidence["status"] == 404
    body = f.evidence["body"]
    assert body.startswith("404 Not Found Not Found The requested URL was not found on this "
                           "server. padding padding")
    assert "\n" not in body and "<" not in body and len(body) == 120 and body.endswith("...")


@pytest.mark.parametrize(("options", "error"), [
    ({"samples": 500, "bogus": 1},
     "plugin 'http-diagnostics': unknown target option(s) bogus (known: expected_status, "
     "path, samples); samples: 500 is greater than the maximum of 20"),
    ({"path": "nope"}, "plugin 'http-diagnostics': path: 'nope' does not match '^/'"),
    ({"expected_status": [200, "x"]},
     "plugin 'http-diagnostics': expected_status: 'x' is not of type 'integer'"),
])
def test_invalid_target_options_are_refused_before_any_request(
        http_manager: PluginManager, http_endpoint: str, options: dict[str, object],
        error: str) -> None:
    r = http_manager.diagnose(MiddlewareTarget(type="http", endpoints=(http_endpoint,),
                                               options=options))
    assert r.status is Status.UNKNOWN and r.findings == []
    assert r.errors == {"_config": error}


def test_samples_per_target(http_manager: PluginManager, http_endpoint: str) -> None:
    r = http_manager.diagnose(MiddlewareTarget(
        type="http", endpoints=(http_endpoint,), options={"path": "/slow", "samples": 2},
        thresholds={"latency_ms_warning": 50}), categories_only("latency"))
    assert r.findings[0].evidence["samples"] == 2
