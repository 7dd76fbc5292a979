"""HTTP handlers for acknowledging and querying alerts, and alerting's /metrics.

Framework-free functions (``handle_*`` → (status, JSON-able body)) for any server, plus aiohttp
handlers built on them (``aiohttp_routes``) to mount on an aiohttp application:

    POST /alerts/{ref}/ack      body (optional) {"by": "alice", "note": "…"}  → 200 / 404      role admin
    GET  /alerts?since=1h&severity=critical&rule=R&status=firing&limit=100             role read
    GET  /alerts/{ref}                                                                  role read
    GET  /alerts/dead-letters                                             role admin, tenant "*"
    GET  /alerts/metrics        Prometheus text format                                  role read

A principal of one tenant sees, and acknowledges, the alerts of that tenant only (their sample log
lines included); an alert of another tenant is answered 404, as if it did not exist. The roles are
checked by :func:`logwarden.common.http.protect` on the application the routes are mounted on.

``AlertsHttpServer`` serves them from a thread of their own when the process has no aiohttp app.
"""

from __future__ import annotations

import ssl
import time
from typing import Any, Mapping

from aiohttp import web

from logwarden.alerting import history
from logwarden.alerting.service import AlertService
from logwarden.common.auth import ADMIN, READ, Authenticator
from logwarden.common.durations import parse_duration
from logwarden.common.http import BackgroundHttpServer, principal, protect, requires


def handle_ack(service: AlertService, ref: str, body: Mapping[str, Any] | None,
               tenant: str | None = None) -> tuple[int, dict]:
    """Acknowledge alert ``ref``; ``body`` may name ``by`` and hold a ``note``. With ``tenant``, only an
    alert of that tenant (another tenant's is not found)."""
    body = body or {}
    by = str(body.get("by") or "http").strip() or "http"
    try:
        result = service.acknowledge(ref, by=by, note=str(body.get("note") or ""), tenant=tenant)
    except KeyError:
        return 404, {"error": f"no alert {ref}"}
    return 200, result


def handle_list(service: AlertService, params: Mapping[str, str], tenant: str | None = None) -> tuple[int, Any]:
    """Alerts matching the query parameters ``since`` (a duration back from now), ``severity``,
    ``rule``, ``status``, ``limit``; of ``tenant`` only, unless None."""
    try:
        since = time.time() - parse_duration(params["since"]) if params.get("since") else None
        limit = int(params.get("limit", 1000))
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return 200, history.list_alerts(
        service.store,
        since=since,
        severity=params.get("severity"),
        rule=params.get("rule"),
        status=params.get("status"),
        limit=limit,
        tenant=tenant,
    )


def handle_get(service: AlertService, ref: str, tenant: str | None = None) -> tuple[int, Any]:
    """One alert with its deliveries (of ``tenant`` only, unless None)."""
    alert = history.get_alert(service.store, ref, tenant=tenant)
    return (200, alert) if alert is not None else (404, {"error": f"no alert {ref}"})


def handle_dead_letters(service: AlertService) -> tuple[int, Any]:
    """Messages given up on."""
    return 200, history.dead_letters(service.store)


def aiohttp_routes(service: AlertService, prefix: str = "/alerts") -> list[web.RouteDef]:
    """aiohttp routes for the handlers above (``app.add_routes(aiohttp_routes(service))``), for an
    application behind :func:`logwarden.common.http.protect`."""

    @requires(ADMIN)
    async def ack(request: web.Request) -> web.Response:
        body: dict = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"error": "the body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        body.setdefault("by", request.query.get("by"))
        status, out = handle_ack(service, request.match_info["ref"], body, principal(request).tenant_filter)
        return web.json_response(out, status=status)

    @requires(READ)
    async def listing(request: web.Request) -> web.Response:
        status, out = handle_list(service, request.query, principal(request).tenant_filter)
        return web.json_response(out, status=status)

    @requires(READ)
    async def one(request: web.Request) -> web.Response:
        status, out = handle_get(service, request.match_info["ref"], principal(request).tenant_filter)
        return web.json_response(out, status=status)

    @requires(ADMIN, all_tenants=True)
    async def dead(request: web.Request) -> web.Response:
        status, out = handle_dead_letters(service)
        return web.json_response(out, status=status)

    @requires(READ)
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=service.metrics_text(), content_type="text/plain", charset="utf-8")

    return [
        web.post(f"{prefix}/{{ref}}/ack", ack),
        web.get(prefix, listing),
        web.get(f"{prefix}/dead-letters", dead),
        web.get(f"{prefix}/metrics", metrics),
        web.get(f"{prefix}/{{ref}}", one),
    ]


def make_app(service: AlertService, auth: Authenticator | None = None) -> web.Application:
    """A small aiohttp application serving only alerting's routes, behind ``auth`` (None: loopback only)."""
    app = protect(web.Application(), auth)
    app.add_routes(aiohttp_routes(service))
    return app


class AlertsHttpServer(BackgroundHttpServer):
    """Serves :func:`make_app` on ``host:port`` from a background thread with its own event loop
    (for a process without an aiohttp server of its own)."""

    def __init__(self, service: AlertService, host: str = "127.0.0.1", port: int = 8081,
                 auth: Authenticator | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(lambda: make_app(service, auth), host, port, name="alerting-http", ssl_context=ssl_context)
        self.service = service

    @property
    def url(self) -> str:
        """The base URL of the alert routes."""
        return f"{self.base_url}/alerts"
