"""Connection guard of the collector's HTTP port: a header-read timeout and a per-client connection limit.

- **Header timeout.** A connection must finish the headers of a request within ``header_timeout``
  seconds of opening, and of its previous response on a kept-alive connection; otherwise it is
  closed. A client that opens connections and trickles its headers forever (slowloris) holds each
  for that long at most. The body has its own limit (``body_timeout``), once the headers are in.
- **Per-client limit.** A client address may hold at most ``max_connections_per_client`` open
  connections; one more is answered ``503`` (``Retry-After``) and closed before anything is read.
  ``0`` turns the limit off (e.g. behind a proxy where every client has one address).

It attaches to aiohttp's low-level ``web.Server`` (the connection callbacks every ``RequestHandler``
makes) and to the application (an outermost middleware marks a request in progress), so it needs
no private API.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter as MetricCounter

log = logging.getLogger(__name__)
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n%s")
REFUSAL_BODY = (b'{"accepted": 0, "rejected": 0, "errors": [{"index": null, "field": "", '
                b'"error": "too many connections from this client"}]}')


def refusal_counter(registry: CollectorRegistry) -> MetricCounter:
    """``logwarden_collector_http_connections_closed{reason}``: connections refused (``limit``) or closed
    (``header_timeout``) by the guard, on the collector's registry."""
    return MetricCounter("logwarden_collector_http_connections_closed",
                         "HTTP connections refused past max_connections_per_client (limit) or closed without "
                         "request headers within header_timeout (header_timeout)", ["reason"], registry=registry)


@dataclass
class _Connection:
    peer: str | None
    counted: bool
    transport: Any
    busy: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass
class ConnectionGuard:
    """The header timeout and the per-client limit of one HTTP listener (see the module doc)."""

    header_timeout: float = 10.0
    max_per_client: int = 256
    on_refused: Callable[[str], None] | None = None  # called with the reason: "limit" or "header_timeout"
    _connections: dict[Any, _Connection] = field(default_factory=dict)
    _per_client: Counter = field(default_factory=Counter)

    def install(self, app: web.Application) -> web.Application:
        """Add the middleware that marks requests in progress (before the app starts: it is outermost)."""
        app.middlewares.insert(0, self._middleware)
        return app

    def attach(self, server: web.Server) -> None:
        """Watch the connections of ``server`` (``AppRunner.server`` after ``setup()``)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._opened(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self._closed(handler)
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def open_connections(self, peer: str) -> int:
        """Connections counted for client address ``peer``."""
        return self._per_client[peer]

    # connections --------------------------------------------------------------------------------
    def _opened(self, handler: Any, transport: asyncio.Transport) -> None:
        peername = transport.get_extra_info("peername")
        peer = peername[0] if isinstance(peername, (tuple, list)) and peername else None
        if peer is not None and self.max_per_client and self._per_client[peer] >= self.max_per_client:
            self._connections[handler] = _Connection(peer, False, transport)
            log.warning("refused a connection from %s: it holds %d already (max_connections_per_client)",
                        peer, self._per_client[peer])
            self._refused("limit")
            try:
                transport.write(REFUSAL % (len(REFUSAL_BODY), REFUSAL_BODY))
            finally:
                transport.close()
            return
        if peer is not None:
            self._per_client[peer] += 1
        self._connections[handler] = connection = _Connection(peer, peer is not None, transport)
        self._arm(handler, connection)

    def _closed(self, handler: Any) -> None:
        connection = self._connections.pop(handler, None)
        if connection is None:
            return
        if connection.timer is not None:
            connection.timer.cancel()
        if connection.counted:
            self._per_client[connection.peer] -= 1
            if self._per_client[connection.peer] <= 0:
                del self._per_client[connection.peer]

    def _arm(self, handler: Any, connection: _Connection) -> None:
        if connection.timer is not None:
            connection.timer.cancel()
        connection.timer = None
        if self.header_timeout > 0:
            loop = asyncio.get_running_loop()
            connection.timer = loop.call_later(self.header_timeout, self._expired, handler)

    def _expired(self, handler: Any) -> None:
        connection = self._connections.get(handler)
        if connection is None or connection.busy:
            return
        connection.timer = None
        log.info("closed a connection from %s: no complete request headers within %.0fs",
                 connection.peer, self.header_timeout)
        self._refused("header_timeout")
        connection.transport.close()

    def _refused(self, reason: str) -> None:
        if self.on_refused is not None:
            self.on_refused(reason)

    # requests -----------------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        connection = self._connections.get(request.protocol)
        if connection is None:  # not a watched server (tests of the app alone)
            return await handler(request)
        connection.busy += 1
        if connection.timer is not None:
            connection.timer.cancel()
            connection.timer = None
        try:
            return await handler(request)
        finally:
            connection.busy -= 1
            if not connection.busy and request.protocol in self._connections:
                self._arm(request.protocol, connection)
