"""The Tornado application: pages, JSON API, ``/metrics``, static assets.

Storage calls block, so each request runs them on the IOLoop's thread pool; the loop
keeps answering (a slow database delays that request, not every page). When storage
cannot be reached a page answers 503 with a plain explanation, the API a JSON error,
and the next request after it is back succeeds (the store reconnects by itself).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import tornado.web
from tornado.ioloop import IOLoop

from kubestack_ai.storage import STATUSES, StorageError, StorageUnavailable, Store

from . import metrics, plugins, views
from .auth import WebAuth

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
REFRESH = 30
"""Seconds between automatic reloads of the fleet page."""
T = TypeVar("T")


def storage_name(store: Store) -> str:
    """The database as a page may name it: backend and host, never user, password or DSN."""
    u = store.url
    where = f"{u.host}:{u.port}" if u.host else "local file"
    return f"{u.get_backend_name()} ({where})"


class Base(tornado.web.RequestHandler):
    store: Store
    auth: WebAuth

    def initialize(self, store: Store, auth: WebAuth) -> None:
        self.store = store
        self.auth = auth

    def prepare(self) -> None:
        if not self.auth.allows(self.request.headers.get("Authorization")):
            self.set_status(401)
            if self.auth.user:
                self.set_header("WWW-Authenticate", 'Basic realm="ksa"')
            self.finish("authentication required\n")

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        # no script or style from elsewhere; inline style attributes size the timeline
        self.set_header("Content-Security-Policy",
                        "default-src 'self'; style-src 'self' 'unsafe-inline'")

    async def read(self, fn: Callable[[], T]) -> T:
        return await IOLoop.current().run_in_executor(None, fn)

    def get_template_namespace(self) -> dict[str, Any]:
        ns = super().get_template_namespace()
        ns.update(refresh=None, ago=views.ago, qkey=lambda k: quote(k, safe=""), statuses=STATUSES,
                  storage=storage_name(self.store))
        return ns

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, StorageError):  # expected while the database is away: one line
            log.warning("web: %s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, StorageError):
            status_code = 503
            self.set_status(503)
            what = ("cannot be reached" if isinstance(exc, StorageUnavailable)
                    else "answered with an error")
            message = f"The storage database {storage_name(self.store)} {what}."
        else:
            message = self._reason
        if self.request.path.startswith("/api/") or self.request.path == "/metrics":
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": message, "status": status_code}))
        else:
            self.render("error.html", code=status_code, message=message)


def _filters(h: tornado.web.RequestHandler) -> views.Filters:
    def num(name: str, default: int) -> int:
        try:
            return int(h.get_argument(name, str(default)))
        except ValueError:
            raise tornado.web.HTTPError(400, reason=f"{name} must be a number") from None
    return views.Filters(h.get_argument("status", ""), h.get_argument("type", ""),
                         h.get_argument("q", ""), num("offset", 0),
                         num("limit", views.PAGE),
                         h.get_argument("adhoc", "") not in ("", "0")).normalized()


class FleetPage(Base):
    async def get(self) -> None:
        f = _filters(self)
        data = await self.read(lambda: views.fleet(self.store, f))
        self.render("fleet.html", d=data, refresh=REFRESH)


class TargetPage(Base):
    async def get(self, key: str) -> None:
        try:
            hours = max(1, min(int(self.get_argument("hours", str(views.TREND_HOURS))), 168))
        except ValueError:
            raise tornado.web.HTTPError(400, reason="hours must be a number") from None
        data = await self.read(lambda: views.target(self.store, key))
        if data is None:
            raise tornado.web.HTTPError(404, reason=f"no runs of target {key!r} in storage")
        trends = await self.read(lambda: views.trends(self.store, data, hours))
        self.render("target.html", t=data, trends=trends, hours=hours, refresh=REFRESH)


class FleetApi(Base):
    async def get(self) -> None:
        f = _filters(self)
        self.write(await self.read(lambda: views.fleet(self.store, f)))


class TargetApi(Base):
    async def get(self, key: str) -> None:
        data = await self.read(lambda: views.target(self.store, key))
        if data is None:
            raise tornado.web.HTTPError(404, reason=f"no runs of target {key!r} in storage")
        self.write(data)


class HistoryApi(Base):
    async def get(self, key: str) -> None:
        try:
            limit = int(self.get_argument("limit", "200"))
        except ValueError:
            raise tornado.web.HTTPError(400, reason="limit must be a number") from None
        runs = await self.read(lambda: views.history(self.store, key, limit))
        if not runs:
            raise tornado.web.HTTPError(404, reason=f"no runs of target {key!r} in storage")
        self.write({"key": key, "runs": runs})


class CanaryPage(Base):
    """A plugin's canary: the current and the canary version side by side (the same
    comparison as ``ksa plugin compare``; plugins/index/canary.py)."""

    def initialize(self, store: Store, auth: WebAuth, home: Path | None = None) -> None:
        super().initialize(store, auth)
        self.home = home

    async def report(self, plugin_id: str) -> dict[str, Any]:
        from kubestack_ai.plugins.index import canary  # noqa: PLC0415

        home = self.home
        if home is None:
            raise tornado.web.HTTPError(404, reason="no KSA_HOME: canaries are not known here")
        data = await self.read(lambda: canary.report(
            home, plugin_id, lambda since: self.store.plugin_runs(plugin_id, since)))
        if data is None:
            raise tornado.web.HTTPError(404, reason=f"plugin {plugin_id!r} has had no canary")
        return data

    async def get(self, plugin_id: str) -> None:
        self.render("canary.html", c=await self.report(plugin_id), refresh=REFRESH)


class CanaryApi(CanaryPage):
    async def get(self, plugin_id: str) -> None:
        self.write(await self.report(plugin_id))


class PluginsPage(Base):
    """Every plugin known here: where it runs and its isolation, layer by layer (plugins.py)."""

    async def get(self) -> None:
        self.render("plugins.html", p=await self.read(lambda: plugins.plugins(self.store)))


class PluginsApi(Base):
    async def get(self) -> None:
        self.write(await self.read(lambda: plugins.plugins(self.store)))


class Metrics(Base):
    def prepare(self) -> None:  # its own optional token, not the pages' credentials
        if not self.auth.allows_metrics(self.request.headers.get("Authorization")):
            self.set_status(401)
            self.finish("metrics token required\n")

    def initialize(self, store: Store, auth: WebAuth,
                   snapshots: metrics.Snapshots | None = None) -> None:
        super().initialize(store, auth)
        self.snapshots = snapshots or metrics.Snapshots(store)

    async def get(self) -> None:
        body = await self.read(self.snapshots.scrape)
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.write(body)


class Health(Base):
    def prepare(self) -> None:
        pass

    def get(self) -> None:
        self.write("ok\n")


def make_app(store: Store, auth: WebAuth | None = None,
             home: Path | None = None) -> tornado.web.Application:
    kw = {"store": store, "auth": auth or WebAuth()}
    return tornado.web.Application(
        [
            (r"/", FleetPage, kw),
            (r"/targets/(.+)", TargetPage, kw),
            (r"/api/targets", FleetApi, kw),
            (r"/api/targets/(.+)/history", HistoryApi, kw),
            (r"/api/targets/(.+)", TargetApi, kw),
            (r"/plugins", PluginsPage, kw),
            (r"/api/plugins", PluginsApi, kw),
            (r"/plugins/([^/]+)/canary", CanaryPage, {**kw, "home": home}),
            (r"/api/plugins/([^/]+)/canary", CanaryApi, {**kw, "home": home}),
            (r"/metrics", Metrics, {**kw, "snapshots": metrics.Snapshots(store)}),
            (r"/healthz", Health, kw),
        ],
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),  # also serves /favicon.ico from it
        xsrf_cookies=False,  # read-only: no form changes anything
        compress_response=True,
    )
