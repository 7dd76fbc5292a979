"""aiohttp plumbing shared by every HTTP surface: who may call a route, and a server in a thread.

Every route declares its role where its handler is defined, with one decorator::

    @requires("read")                      # or "ingest", "admin"; all_tenants=True: tenant "*" only
    async def listing(request): ...
        tenant = principal(request).tenant_filter   # None: every tenant

    @public                                # probes: /health, /ready
    async def health(request): ...

and the application gets the one middleware with ``protect(app, authenticator)``. The middleware
authenticates each request (:mod:`logwarden.common.auth`), answers 401 (with ``WWW-Authenticate``) or
403 as JSON, and leaves the Principal in the request for the handler. A route without a declaration
is refused when the application starts, and, should one slip through, served to admins of every
tenant only.
"""
from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any, Awaitable, Callable

from aiohttp import web

from logwarden.common.auth import ADMIN, AuthError, Authenticator, Principal

Handler = Callable[..., Awaitable[web.StreamResponse]]
ErrorBody = Callable[[int, str], Any]

ROLE_ATTRIBUTE = "__logwarden_role__"
PUBLIC = "public"
AUTHENTICATOR_KEY = web.AppKey("authenticator", Authenticator)
ERROR_BODY_KEY = web.AppKey("auth_error_body", object)
# aiohttp 3.14+ has typed request keys; a plain string key on older versions
PRINCIPAL = web.RequestKey("principal", Principal) if hasattr(web, "RequestKey") else "logwarden.principal"


def requires(role: str, all_tenants: bool = False) -> Callable[[Handler], Handler]:
    """Declare that a handler needs ``role`` (``ingest``, ``read``, ``admin``); with ``all_tenants``, a
    principal of tenant ``"*"`` as well."""
    def mark(handler: Handler) -> Handler:
        setattr(handler, ROLE_ATTRIBUTE, (role, all_tenants))
        return handler
    return mark


def public(handler: Handler) -> Handler:
    """Declare that a handler answers anyone (health and readiness probes, the API description)."""
    setattr(handler, ROLE_ATTRIBUTE, (PUBLIC, False))
    return handler


def declared_role(handler: Any) -> tuple[str, bool] | None:
    """What ``handler`` declared with :func:`requires` or :func:`public`, or None."""
    return getattr(handler, ROLE_ATTRIBUTE, None)


def principal(request: web.Request) -> Principal:
    """Who sent ``request`` (set by the middleware of :func:`protect`)."""
    try:
        return request[PRINCIPAL]
    except KeyError:
        raise RuntimeError("the request went through no authentication: call protect(app, ...)") from None


def default_error_body(status: int, message: str) -> dict[str, Any]:
    """``{"error": message, "status": status}``."""
    return {"error": message, "status": status}


def auth_error_response(app: web.Application, error: AuthError) -> web.Response:
    """The JSON answer of a refused request."""
    make_body = app.get(ERROR_BODY_KEY) or default_error_body
    return web.json_response(make_body(error.status, error.message), status=error.status, headers=error.headers)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate and authorize ``request`` against the role its route declares."""
    match = request.match_info
    if match.http_exception is not None:  # no such route (404/405): nothing to protect
        return await handler(request)
    declared = declared_role(match.handler) or (ADMIN, True)  # undeclared: the strictest
    if declared[0] == PUBLIC:
        return await handler(request)
    authenticator = request.app[AUTHENTICATOR_KEY]
    try:
        request[PRINCIPAL] = authenticator.authorize(request.headers.get("Authorization"), request.remote,
                                                     declared[0], declared[1])
    except AuthError as exc:
        return auth_error_response(request.app, exc)
    return await handler(request)


def _check_declarations(app: web.Application) -> None:
    undeclared = sorted({f"{route.method} {route.resource.canonical}" for route in app.router.routes()
                         if route.resource is not None and declared_role(route.handler) is None})
    if undeclared:
        raise RuntimeError(f"routes without a declared role (use @requires(role) or @public): "
                           f"{', '.join(undeclared)}")


def protect(app: web.Application, authenticator: Authenticator | None = None,
            error_body: ErrorBody | None = None) -> web.Application:
    """Put ``app`` behind ``authenticator`` (None: no tokens, loopback clients only); ``error_body``
    shapes the JSON of a 401/403. Every route must declare its role before the app starts."""
    app[AUTHENTICATOR_KEY] = authenticator or Authenticator()
    if error_body is not None:
        app[ERROR_BODY_KEY] = error_body
    app.middlewares.append(auth_middleware)

    async def check(app: web.Application) -> None:
        _check_declarations(app)

    app.on_startup.append(check)
    return app


class BackgroundHttpServer:
    """Serves the application ``make_app()`` returns on ``host:port`` until ``stop``; with
    ``ssl_context``, over TLS."""

    def __init__(self, make_app: Callable[[], web.Application], host: str = "127.0.0.1", port: int = 0,
                 name: str = "http", ssl_context: ssl.SSLContext | None = None) -> None:
        self.make_app = make_app
        self.host = host
        self.port = port
        self.name = name
        self.ssl_context = ssl_context
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS, else ``http``."""
        return "https" if self.ssl_context is not None else "http"

    @property
    def base_url(self) -> str:
        """``http(s)://host:port`` (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Bind and serve; raises OSError when the port is taken."""
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._runner = web.AppRunner(self.make_app(), access_log=None)
                loop.run_until_complete(self._runner.setup())
                site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
                loop.run_until_complete(site.start())
                self.port = site._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        started.wait(timeout)
        if failure:
            if isinstance(failure[0], OSError):
                raise OSError(failure[0].errno, f"{self.name} cannot listen on {self.host}:{self.port}: "
                                                f"{failure[0].strerror}") from failure[0]
            raise failure[0]

    def stop(self) -> None:
        """Stop serving."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None
