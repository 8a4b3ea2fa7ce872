"""Run the web view: ``ksa serve`` and the one ``ksa run`` starts."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from tornado.httpserver import HTTPServer

from kubestack_ai.storage import Store

from .app import make_app
from .auth import WebAuth, WebError
from .hosts import AllowedHosts

log = logging.getLogger(__name__)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def serve(store: Store, host: str = "127.0.0.1", port: int = 8080,
          auth: WebAuth | None = None, hosts: AllowedHosts | None = None,
          home: Path | None = None) -> None:
    """Serve until interrupted, to the Host names in ``hosts`` only (by default: the bind
    address and localhost; see hosts.py). Raises WebError when the address cannot be used."""
    auth = auth or WebAuth()
    auth.check_bind(host)
    server = HTTPServer((hosts or AllowedHosts(host)).guard(make_app(store, auth, home)),
                        xheaders=False)

    async def main() -> None:
        try:
            server.listen(port, address=host)
        except OSError as e:
            raise WebError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        log.info("web: serving %s on http://%s:%d", store.masked_url, host, port)
        await asyncio.Event().wait()

    asyncio.run(main())
