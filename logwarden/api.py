"""The stack's HTTP API (default 127.0.0.1:8081): alert history and acknowledgement, and the routes
other layers contribute (search, feedback)."""
from __future__ import annotations

from typing import Callable

from aiohttp import web

from logwarden.common.http import BackgroundHttpServer

Installer = Callable[[web.Application], object]


def api_app(installers: list[Installer]) -> web.Application:
    """One application with ``GET /health`` and what every installer adds (routes, app state)."""
    app = web.Application()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/health", health)
    for install in installers:
        install(app)
    return app


class ApiServer(BackgroundHttpServer):
    """The API application served from a background thread of ``logwarden up``."""

    def __init__(self, installers: list[Installer], host: str, port: int) -> None:
        super().__init__(lambda: api_app(installers), host, port, name="logwarden-api")
