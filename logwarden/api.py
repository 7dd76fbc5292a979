"""The stack's HTTP API (default 127.0.0.1:8081): alert history and acknowledgement, and the routes
other layers contribute (search, feedback).

Every route declares its role where it is defined (``logwarden.common.http.requires``); the one
authenticator of the stack checks them all. ``GET /health`` answers anyone (probes); ``GET /metrics``
(role ``read``) serves the Prometheus metrics of this process (``prometheus_client``'s default
registry: processing's spool, quarantine and dead-letter counts). With a certificate configured, the
API is served over TLS.
"""
from __future__ import annotations

import ssl
from typing import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from logwarden.common.auth import READ, Authenticator
from logwarden.common.http import BackgroundHttpServer, protect, public, requires

Installer = Callable[[web.Application], object]


def api_app(installers: list[Installer], auth: Authenticator | None = None) -> web.Application:
    """One application behind ``auth`` (None: loopback clients only) with ``GET /health`` and what
    every installer adds (routes, app state)."""
    app = protect(web.Application(), auth)

    @public
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @requires(READ)
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    for install in installers:
        install(app)
    return app


class ApiServer(BackgroundHttpServer):
    """The API application served from a background thread of ``logwarden up``."""

    def __init__(self, installers: list[Installer], host: str, port: int, auth: Authenticator | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(lambda: api_app(installers, auth), host, port, name="logwarden-api",
                         ssl_context=ssl_context)
