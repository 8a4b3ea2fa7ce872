"""http-diagnostics: an external plugin for an HTTP(S) health endpoint.

Shipped as a plugin folder (plugin.yaml + this code); the framework imports it under a
fresh module name on each (re)load, so sibling modules are imported relatively.
"""

from __future__ import annotations

import http.client
import re
import ssl
import statistics
import time
from dataclasses import dataclass
from typing import Any

from kubestack_ai.plugins import (
    ConnectError,
    Deadline,
    MiddlewarePlugin,
    MiddlewareTarget,
    PluginInfo,
    Run,
    Severity,
    category,
    split_endpoint,
)

from . import constants as C

INFO = PluginInfo(
    id="http-diagnostics", name="HTTP health endpoint diagnostics", version="1.0.0",
    description="Status code, latency and TLS certificate expiry of an HTTP(S) health endpoint.",
    capabilities=("health-check", "diagnose"), author="KubeStack AI", api_version="1.0",
)


@dataclass
class Response:
    status: int
    seconds: float
    body: str
    cert: dict | None


class HttpPlugin(MiddlewarePlugin):
    def info(self) -> PluginInfo:
        return INFO

    def middleware_type(self) -> str:
        return "http"

    @classmethod
    def target_options(cls) -> dict[str, Any]:
        """Per target, over the plugin config's options of the same names; anything
        else (``-o bogus=1``) is refused before the request, naming these."""
        return C.TARGET_OPTIONS

    def setting(self, target: MiddlewareTarget, name: str) -> Any:
        """The target's option, else the plugin config's (defaults filled from the
        manifest's config_schema)."""
        return target.options.get(name, self.option(name, C.TARGET_OPTIONS[name]["default"]))

    # -- one request -------------------------------------------------------------------

    def _context(self, target: MiddlewareTarget) -> ssl.SSLContext | None:
        tls = target.tls
        if tls is None or not tls.enabled:
            return None
        ctx = ssl.create_default_context(cafile=tls.ca_file)
        if not tls.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if tls.cert_file:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
        return ctx

    def request(self, target: MiddlewareTarget, deadline: Deadline) -> Response:
        host, port = split_endpoint(target.endpoints[0])
        path = self.setting(target, "path")
        timeout = deadline.remaining(cap=C.REQUEST_TIMEOUT_CAP) or 0.001
        ctx = self._context(target)
        conn: http.client.HTTPConnection
        if ctx is not None:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        t0 = time.perf_counter()
        try:
            conn.connect()
            # read the certificate now: the server may close the socket after the response
            cert = conn.sock.getpeercert() if ctx is not None else None
            conn.request("GET", path, headers={"User-Agent": "kubestack-ai/http-diagnostics"})
            resp = conn.getresponse()
            body = resp.read(C.BODY_EXCERPT).decode("utf-8", "replace")
            seconds = time.perf_counter() - t0
            return Response(resp.status, seconds, body, cert)
        finally:
            conn.close()

    # -- lifecycle ---------------------------------------------------------------------

    def connect(self, deadline: Deadline, target: MiddlewareTarget) -> None:
        try:
            resp = self.request(target, deadline)
        except (OSError, http.client.HTTPException) as e:
            raise ConnectError(f"{target.endpoints[0]}: {e}") from None
        self.target = target
        self._first = resp

    def prepare(self, run: Run) -> None:
        # the response connect() read is this run's first sample; never reuse it twice
        first, self._first = getattr(self, "_first", None), None
        run.data["first"] = first or self.request(run.target, run.deadline)

    # -- checks ------------------------------------------------------------------------

    @category("availability")
    def check_availability(self, run: Run) -> None:
        resp: Response = run.data["first"]
        expected = list(self.setting(run.target, "expected_status"))
        run.metric("status_code", resp.status)
        if resp.status not in expected:
            severity = Severity.CRITICAL if resp.status >= 500 else Severity.WARNING
            run.finding("http.availability.unexpected_status", severity,
                        f"Health endpoint answered {resp.status}, expected {expected}",
                        evidence={"status": resp.status, "expected": expected,
                                  "body": excerpt(resp.body)},
                        suggestion="Read the service's logs: its health check reports a "
                                   "failing dependency or an overload.")

    @category("latency")
    def check_latency(self, run: Run) -> None:
        samples = int(self.setting(run.target, "samples"))
        times = [run.data["first"].seconds]
        for _ in range(samples - 1):
            run.deadline.check("latency")
            times.append(self.request(run.target, run.deadline).seconds)
        median_ms = round(statistics.median(times) * 1000, 3)
        warn = run.threshold("latency_ms_warning", C.LATENCY_MS_WARNING)
        crit = run.threshold("latency_ms_critical", C.LATENCY_MS_CRITICAL)
        run.metric("latency_ms_median", median_ms)
        if median_ms > warn:
            severity = Severity.CRITICAL if median_ms > crit else Severity.WARNING
            limit = crit if severity is Severity.CRITICAL else warn
            run.finding("http.latency.slow", severity,
                        f"Median response time {median_ms:.0f} ms is above {limit:g} ms",
                        evidence={"median_ms": median_ms, "threshold_ms": limit,
                                  "samples": len(times)},
                        suggestion="Profile the health handler; a slow health check often "
                                   "means a saturated worker pool or a slow dependency.")

    @category("tls")
    def check_tls(self, run: Run) -> None:
        resp: Response = run.data["first"]
        if resp.cert is None:
            return  # plain HTTP: nothing to check
        if not resp.cert:
            raise ValueError("the certificate is only readable when verified "
                             "(set tls.verify and tls.ca_file)")
        expires = ssl.cert_time_to_seconds(resp.cert["notAfter"])
        days = round((expires - time.time()) / 86400, 2)
        run.metric("tls_days_left", days)
        warn = run.threshold("tls_days_warning", C.TLS_DAYS_WARNING)
        crit = run.threshold("tls_days_critical", C.TLS_DAYS_CRITICAL)
        if days < warn:
            severity = Severity.CRITICAL if days < crit else Severity.WARNING
            run.finding("http.tls.expiring", severity,
                        f"TLS certificate expires in {days:g} days",
                        evidence={"days_left": days, "not_after": resp.cert["notAfter"],
                                  "threshold_days": crit if severity is Severity.CRITICAL
                                  else warn},
                        suggestion="Renew the certificate (or check that cert-manager / "
                                   "your ACME client is renewing it).")


def excerpt(body: str) -> str:
    """A response body as evidence: its text on one line (tags dropped, whitespace runs
    collapsed), at most C.BODY_EVIDENCE characters. An HTML error page stays readable
    and never breaks a terminal's layout."""
    text = " ".join(re.sub(r"<[^>]*(>|$)", " ", body).split())  # an unclosed last tag too
    return text if len(text) <= C.BODY_EVIDENCE else text[: C.BODY_EVIDENCE - 3] + "..."
