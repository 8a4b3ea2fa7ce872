"""Run the web view: ``ksa serve`` and the one ``ksa run`` starts."""

from __future__ import annotations

import asyncio
import logging
import socket

from kubestack_ai.storage import Store

from .app import make_app
from .auth import WebAuth, WebError

log = logging.getLogger(__name__)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def serve(store: Store, host: str = "127.0.0.1", port: int = 8080,
          auth: WebAuth | None = None) -> None:
    """Serve until interrupted. Raises WebError when the address cannot be used."""
    auth = auth or WebAuth()
    auth.check_bind(host)
    app = make_app(store, auth)

    async def main() -> None:
        try:
            app.listen(port, address=host, xheaders=False)
        except OSError as e:
            raise WebError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        log.info("web: serving %s on http://%s:%d", store.masked_url, host, port)
        await asyncio.Event().wait()

    asyncio.run(main())
