"""The stack's HTTP API (default 127.0.0.1:8081): alert history and acknowledgement, and the routes
other layers contribute (search, feedback).

Every route declares its role where it is defined (``logwarden.common.http.requires``); the one
authenticator of the stack checks them all. ``GET /health`` answers anyone (probes); ``GET /metrics``
(role ``read``) serves every Prometheus metric of this process, the driver: ``prometheus_client``'s
default registry (processing's counters, the spool, the quarantine, ``process_*``) followed by the
registries the stack adds (the lake, the detectors, alerting, the data dir's disk, Dask workers,
self-alerts). With a certificate configured, the API is served over TLS.
"""
from __future__ import annotations

import ssl
from typing import Callable, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from logwarden.common.auth import READ, Authenticator
from logwarden.common.http import BackgroundHttpServer, protect, public, requires

Installer = Callable[[web.Application], object]


def metrics_text(registries: Sequence[CollectorRegistry] = ()) -> bytes:
    """The default registry's exposition followed by that of each of ``registries`` (names must not repeat)."""
    return b"".join(generate_latest(registry) for registry in (REGISTRY, *registries))


def api_app(installers: list[Installer], auth: Authenticator | None = None,
            registries: Sequence[CollectorRegistry] = ()) -> web.Application:
    """One application behind ``auth`` (None: loopback clients only) with ``GET /health``, ``GET /metrics``
    (the default registry and ``registries``) and what every installer adds (routes, app state)."""
    app = protect(web.Application(), auth)

    @public
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @requires(READ)
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics_text(registries), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    for install in installers:
        install(app)
    return app


class ApiServer(BackgroundHttpServer):
    """The API application served from a background thread of ``logwarden up``."""

    def __init__(self, installers: list[Installer], host: str, port: int, auth: Authenticator | None = None,
                 ssl_context: ssl.SSLContext | None = None, registries: Sequence[CollectorRegistry] = ()) -> None:
        super().__init__(lambda: api_app(installers, auth, registries), host, port, name="logwarden-api",
                         ssl_context=ssl_context)
