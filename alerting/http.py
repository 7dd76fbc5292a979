"""HTTP handlers for acknowledging and querying alerts, and alerting's /metrics.

Framework-free functions (``handle_*`` → (status, JSON-able body)) for any server, plus aiohttp
handlers built on them (``aiohttp_routes``) to mount on an aiohttp application:

    POST /alerts/{ref}/ack      body (optional) {"by": "alice", "note": "…"}  → 200 / 404      role admin
    POST /alerts/{ref}/silence  body {"duration": "1h", "reason": "…", "by": "alice"} → 200 / 400 / 404
                                                                           role admin, tenant "*"
    POST /alerts/{ref}/verdict  body {"verdict": "actionable|not_actionable|expected", "by": "alice",
                                "note": "…"} → 200 / 400 / 404 (503: verdicts not kept)    role admin
    GET  /alerts?since=1h&severity=critical&rule=R&status=firing&limit=100             role read
    GET  /alerts/{ref}                                                                  role read
    GET  /alerts/dead-letters                                             role admin, tenant "*"
    GET  /alerts/silences?all=1                                                         role read
    POST /alerts/silences  body {"matchers": ["team=\"payments\""], "duration": "2h", "reason": "…",
                           "by": "alice"} (or "rule" and "key" for the older form)   role admin, tenant "*"
    POST /alerts/silences/{id}/expire  body (optional) {"by": "alice"}        role admin, tenant "*"
    GET  /alerts/metrics        Prometheus text format                                  role read

A principal of one tenant sees, and acknowledges, the alerts of that tenant only (their sample log
lines included); an alert of another tenant is answered 404, as if it did not exist. The roles are
checked by :func:`logwarden.common.http.protect` on the application the routes are mounted on.

``AlertsHttpServer`` serves them from a thread of their own when the process has no aiohttp app.
"""

from __future__ import annotations

import ssl
import time
from typing import TYPE_CHECKING, Any, Mapping

from aiohttp import web

from logwarden.alerting import history
from logwarden.alerting.service import AlertService, anomaly_from_json
from logwarden.alerting.silence_alert import silence_alert
from logwarden.alerting.store import AlertStore
from logwarden.common.auth import ADMIN, READ, Authenticator
from logwarden.common.durations import parse_duration
from logwarden.common.http import BackgroundHttpServer, principal, protect, requires

if TYPE_CHECKING:
    from logwarden.monitoring.ml.verdicts import VerdictStore


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


def handle_silence(service: AlertService, ref: str, body: Mapping[str, Any] | None,
                   tenant: str | None = None) -> tuple[int, dict]:
    """Silence the rule and key of alert ``ref`` for ``body["duration"]`` with ``body["reason"]``, and
    mark its incident's open alerts silenced (:func:`logwarden.alerting.silence_alert.silence_alert`)."""
    body = body or {}
    by = str(body.get("by") or "http").strip() or "http"
    try:
        duration = parse_duration(str(body.get("duration") or ""))
        result = silence_alert(service.store, ref, duration, by, str(body.get("reason") or ""), tenant=tenant)
    except KeyError:
        return 404, {"error": f"no alert {ref}"}
    except ValueError as exc:
        return 400, {"error": f"cannot silence alert {ref}: {exc}"}
    return 200, result


def record_alert_verdict(store: AlertStore, verdicts: VerdictStore, ref: str, verdict: str, by: str,
                         note: str = "", tenant: str | None = None) -> dict[str, Any]:
    """Store a verdict on alert ``ref`` (number, anomaly id or dedup key; of ``tenant`` only, unless None)
    with the alert's features, for the actionable model; the stored verdict. KeyError for an unknown
    alert, ValueError for an unknown verdict."""
    from logwarden.monitoring.ml.actionable import alert_features
    from logwarden.monitoring.ml.verdicts import ALERT

    alert = history.get_alert(store, ref, tenant=tenant)
    if alert is None:
        raise KeyError(ref)
    anomaly = anomaly_from_json(store.query("SELECT data FROM alerts WHERE id=?", (int(alert["id"]),))[0]["data"])
    stored = verdicts.add(ALERT, anomaly.id, verdict, alert_features(anomaly), by, note, anomaly.tenant)
    return {**stored, "alert": alert["id"], "rule": anomaly.rule, "key": anomaly.key}


def handle_verdict(service: AlertService, ref: str, body: Mapping[str, Any] | None,
                   tenant: str | None = None) -> tuple[int, dict]:
    """An operator's verdict on alert ``ref``: ``body["verdict"]`` is ``actionable``, ``not_actionable`` or
    ``expected`` (``false-positive`` is read as ``not_actionable``), with ``by`` and ``note``."""
    if service.verdicts is None:
        return 503, {"error": "this alert service keeps no verdicts"}
    body = body or {}
    by = str(body.get("by") or "http").strip() or "http"
    try:
        return 200, record_alert_verdict(service.store, service.verdicts, ref, str(body.get("verdict") or ""),
                                         by, str(body.get("note") or ""), tenant)
    except KeyError:
        return 404, {"error": f"no alert {ref}"}
    except ValueError as exc:
        return 400, {"error": str(exc)}


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


def handle_silences(service: AlertService, params: Mapping[str, str]) -> tuple[int, Any]:
    """Active silences (every silence with ``all``), newest first."""
    include = str(params.get("all", "")).lower() in ("1", "true", "yes")
    return 200, [s.to_dict() for s in service.silences.list(include_expired=include)]


def handle_silence_add(service: AlertService, body: Mapping[str, Any] | None) -> tuple[int, Any]:
    """Add a silence of ``body["matchers"]`` (label matcher texts) or of ``rule`` (and ``key``), for
    ``duration``, with ``reason`` and ``by``."""
    from logwarden.alerting.dispatch.matchers import parse_matchers
    from logwarden.alerting.inhibit.silences import rule_matchers

    body = body or {}
    texts = body.get("matchers") or []
    try:
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError("matchers must be a list of matcher texts")
        matchers = (rule_matchers(str(body["rule"]), body.get("key")) if body.get("rule") else ()) + parse_matchers(texts)
        silence = service.silences.add_matchers(
            matchers, parse_duration(str(body.get("duration") or "")),
            str(body.get("by") or "http").strip() or "http", str(body.get("reason") or ""))
    except ValueError as exc:
        return 400, {"error": f"cannot add the silence: {exc}"}
    return 200, silence.to_dict()


def handle_silence_expire(service: AlertService, silence_id: str, body: Mapping[str, Any] | None) -> tuple[int, Any]:
    """End silence ``silence_id`` now (404 when unknown, 409 when it has ended already)."""
    by = str((body or {}).get("by") or "http").strip() or "http"
    try:
        return 200, service.silences.expire(int(silence_id), by).to_dict()
    except (KeyError, ValueError) as exc:
        missing = isinstance(exc, KeyError) or not silence_id.isdigit()
        return (404, {"error": f"no silence {silence_id}"}) if missing else (409, {"error": str(exc)})


def handle_dead_letters(service: AlertService) -> tuple[int, Any]:
    """Messages given up on."""
    return 200, history.dead_letters(service.store)


async def _json_object(request: web.Request) -> tuple[dict, web.Response | None]:
    """The request's JSON object body ({} when there is none), or the 400 answer saying what is wrong."""
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        return {}, web.json_response({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict):
        return {}, web.json_response({"error": "the body must be a JSON object"}, status=400)
    return body, None


def aiohttp_routes(service: AlertService, prefix: str = "/alerts") -> list[web.RouteDef]:
    """aiohttp routes for the handlers above (``app.add_routes(aiohttp_routes(service))``), for an
    application behind :func:`logwarden.common.http.protect`."""

    @requires(ADMIN)
    async def ack(request: web.Request) -> web.Response:
        body, refused = await _json_object(request)
        if refused is not None:
            return refused
        body.setdefault("by", request.query.get("by"))
        status, out = handle_ack(service, request.match_info["ref"], body, principal(request).tenant_filter)
        return web.json_response(out, status=status)

    @requires(ADMIN, all_tenants=True)  # a silence covers the rule and key in every tenant
    async def silence(request: web.Request) -> web.Response:
        body, refused = await _json_object(request)
        if refused is not None:
            return refused
        status, out = handle_silence(service, request.match_info["ref"], body, principal(request).tenant_filter)
        return web.json_response(out, status=status)

    @requires(ADMIN)
    async def verdict(request: web.Request) -> web.Response:
        body, refused = await _json_object(request)
        if refused is not None:
            return refused
        for name in ("verdict", "by", "note"):
            if name in request.query:
                body.setdefault(name, request.query[name])
        status, out = handle_verdict(service, request.match_info["ref"], body, principal(request).tenant_filter)
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

    async def body_of(request: web.Request) -> dict | None:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    @requires(READ)
    async def silences(request: web.Request) -> web.Response:
        status, out = handle_silences(service, request.query)
        return web.json_response(out, status=status)

    @requires(ADMIN, all_tenants=True)  # a silence's matchers cover alerts of every tenant
    async def silence_add(request: web.Request) -> web.Response:
        body = await body_of(request)
        if body is None:
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        status, out = handle_silence_add(service, body)
        return web.json_response(out, status=status)

    @requires(ADMIN, all_tenants=True)
    async def silence_expire(request: web.Request) -> web.Response:
        body = await body_of(request)
        if body is None:
            return web.json_response({"error": "the body must be a JSON object"}, status=400)
        status, out = handle_silence_expire(service, request.match_info["id"], body)
        return web.json_response(out, status=status)

    @requires(READ)
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=service.metrics_text(), content_type="text/plain", charset="utf-8")

    return [
        web.post(f"{prefix}/{{ref}}/ack", ack),
        web.post(f"{prefix}/{{ref}}/silence", silence),
        web.post(f"{prefix}/{{ref}}/verdict", verdict),
        web.get(prefix, listing),
        web.get(f"{prefix}/dead-letters", dead),
        web.get(f"{prefix}/silences", silences),
        web.post(f"{prefix}/silences", silence_add),
        web.post(f"{prefix}/silences/{{id}}/expire", silence_expire),
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
