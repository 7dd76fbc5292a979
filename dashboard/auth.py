"""Who may open the dashboard: the stack's authenticator, through Bokeh's ``auth_provider`` hooks.

The overview page (``/``) shows every tenant (rates, templates, alerts), so it needs a principal that
may ``read`` every tenant: tenant ``"*"`` with role read or admin. The pages that ask the API with the
visitor's own credentials (``/search``, ``/alerts``, and the export ``/export``) take any principal
with role read: the API confines each of its answers to the principal's tenant. Without tokens
configured, the authenticator's rule holds: loopback clients only.

With tokens, a client presents one of:

* ``Authorization: Bearer <token>`` on each request (scripts, plain HTTP clients);
* ``?token=<token>`` once on any page; the answer then sets a session cookie (``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` over TLS) that holds a random session id, never the token;
* the session cookie, set above or by the login form (``/login``, which a browser without a
  session is redirected to).

The credentials stay in this process (the session table, and one *grant* per Bokeh document, whose
random id is what the document's session token carries), so a page can call the API on behalf of
its visitor.

Refusals answer 401 (no or invalid credentials, ``WWW-Authenticate: Bearer``) or 403 (a token that
may not read every tenant on the overview, a client off loopback without tokens): JSON for HTTP
clients, the login form for browsers.
"""
from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bokeh.server.auth_provider import AuthProvider
from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler
from tornado.websocket import WebSocketHandler

from logwarden.common.auth import ADMIN, READ, AuthError, Authenticator, Principal

COOKIE = "logwarden_session"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000
LOGIN_PATH = "/login"
TENANT_PAGES = ("/search", "/alerts", "/export")  # pages that ask the API with the visitor's credentials
GRANT_KEY = "logwarden_grant"  # the key of the grant id in a Bokeh session token's payload
_ERROR_ATTRIBUTE = "_logwarden_auth_error"


@dataclass(frozen=True)
class Grant:
    """Who is at a page, and the ``Authorization`` value that acts as them on the API (None: no tokens
    are configured, the API serves loopback clients)."""

    principal: Principal
    authorization: str | None

    @property
    def is_admin(self) -> bool:
        """Whether the principal may act (acknowledge, silence, give feedback), not only read."""
        return self.principal.allows(ADMIN)

    @property
    def who(self) -> str:
        """The name recorded with an action (``by``)."""
        return self.principal.name or "dashboard"


def needs_all_tenants(path: str) -> bool:
    """Whether the page at ``path`` shows every tenant (the overview), rather than asking the API."""
    return not any(path == page or path.startswith(page + "/") for page in TENANT_PAGES)


class _Store:
    """Random ids for grants, expiring, bounded in number."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Grant, float]] = {}
        self._lock = threading.Lock()

    def add(self, grant: Grant) -> str:
        ident = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            if len(self._items) >= MAX_SESSIONS:
                self._items = {k: v for k, v in self._items.items() if v[1] > now}
                while len(self._items) >= MAX_SESSIONS:
                    self._items.pop(next(iter(self._items)))
            self._items[ident] = (grant, now + SESSION_SECONDS)
        return ident

    def get(self, ident: str) -> Grant | None:
        with self._lock:
            found = self._items.get(ident)
            if found is None:
                return None
            if found[1] <= time.time():
                del self._items[ident]
                return None
            return found[0]


class DashboardAuth(AuthProvider):
    """Bokeh auth provider backed by an :class:`Authenticator`; sessions live in this process."""

    def __init__(self, authenticator: Authenticator, secure_cookie: bool) -> None:
        self.authenticator = authenticator
        self.secure_cookie = secure_cookie
        self._sessions = _Store()
        self._grants = _Store()
        self.extra_endpoints: list[tuple[str, type[RequestHandler], dict[str, Any]]] = []
        super().__init__()

    # Bokeh's hooks ------------------------------------------------------------------------------
    @property
    def get_user(self):
        return self.user

    @property
    def get_login_url(self):
        return self.login_url_for

    @property
    def endpoints(self) -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
        return [(LOGIN_PATH, LoginHandler, {"provider": self}), *self.extra_endpoints]

    def user(self, handler: RequestHandler) -> str | None:
        """The name of the request's principal, or None (Tornado then redirects to the login URL)."""
        try:
            principal = self.principal_for(handler)
        except AuthError as exc:
            setattr(handler, _ERROR_ATTRIBUTE, exc)
            return None
        return f"{principal.name} ({principal.tenant}, {principal.role})"

    def login_url_for(self, handler: RequestHandler) -> str:
        """``/login`` with where to go back to (without any token in it) and why the request was refused."""
        error = getattr(handler, _ERROR_ATTRIBUTE, None)
        parts = urlsplit(handler.request.uri or "/")
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"])
        target = urlunsplit(("", "", parts.path or "/", query, ""))
        return f"{LOGIN_PATH}?{urlencode({'next': target, 'status': error.status if error else 401})}"

    # Credentials ---------------------------------------------------------------------------------
    def principal_for(self, handler: RequestHandler, token: str | None = None, path: str | None = None) -> Principal:
        """The principal of a request that may open ``path`` (default: the request's); AuthError otherwise.
        A valid ``token`` (given, or as ``?token=``) opens a session (the cookie is set on ``handler``'s answer)."""
        return self.grant_for(handler, token, path).principal

    def grant_for(self, handler: RequestHandler, token: str | None = None, path: str | None = None) -> Grant:
        """Like :meth:`principal_for`, with the credentials that act as the principal on the API."""
        token = token or handler.get_query_argument("token", None)
        grant = self._credentials(handler.request, token, handler.get_cookie(COOKIE), path)
        # A websocket (Bokeh's, which repeats the page's ?token=) cannot set a cookie: the page did.
        if token and not handler.request.headers.get("Authorization") and \
                not self.authenticator.open_to_loopback_only and not isinstance(handler, WebSocketHandler):
            self._open_session(handler, grant)
        return grant

    def grant_id_for(self, request: HTTPServerRequest) -> str:
        """A new grant for the request that creates a Bokeh document (its credentials checked again),
        to be carried in the document's session token; :meth:`grant` resolves it."""
        token = next((v.decode("utf-8", "replace") for v in request.query_arguments.get("token", [])), None)
        jar: SimpleCookie = request.cookies
        cookie = jar[COOKIE].value if COOKIE in jar else None
        return self._grants.add(self._credentials(request, token, cookie, None))

    def grant(self, ident: str | None) -> Grant | None:
        """The grant of a document (None: unknown or expired)."""
        return self._grants.get(ident) if ident else None

    def _credentials(self, request: HTTPServerRequest, token: str | None, cookie: str | None,
                     path: str | None) -> Grant:
        peer = request.remote_ip
        path = path or request.path or "/"
        if self.authenticator.open_to_loopback_only:
            return self._allowed(Grant(self.authenticator.authenticate(None, peer), None), path)
        header = request.headers.get("Authorization")
        if header:
            return self._allowed(Grant(self.authenticator.authenticate(header, peer), header), path)
        if token:
            principal = self.authenticator.authenticate(None, peer, token=token)
            return self._allowed(Grant(principal, f"Bearer {token}"), path)
        if cookie:
            grant = self._sessions.get(cookie)
            if grant is not None:
                return self._allowed(grant, path)
            raise AuthError(401, "the dashboard session expired: give a token again")
        raise AuthError(401, "the dashboard needs a read token: open it with ?token=<token> "
                             "or send Authorization: Bearer <token>")

    @staticmethod
    def _allowed(grant: Grant, path: str) -> Grant:
        Authenticator.check(grant.principal, READ, all_tenants=needs_all_tenants(path))
        return grant

    def _open_session(self, handler: RequestHandler, grant: Grant) -> None:
        session = self._sessions.add(grant)
        handler.set_cookie(COOKIE, session, path="/", httponly=True, secure=self.secure_cookie,
                           samesite="Strict", max_age=SESSION_SECONDS)


_FORM = """<!doctype html>
<html><head><meta charset="utf-8"><title>logwarden dashboard</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto">
<h1>logwarden dashboard</h1>
<p>{message}</p>
<form method="post" action="{action}">
<label>Read token: <input type="password" name="token" autofocus></label>
<button type="submit">Open</button>
</form>
</body></html>
"""


class LoginHandler(RequestHandler):
    """``GET /login``: a client with credentials goes back to ``next``; the others get a 401/403 answer
    (the token form for browsers). ``POST /login`` (form field ``token``) opens a session."""

    def initialize(self, provider: DashboardAuth) -> None:
        self.provider = provider

    def get(self) -> None:
        try:
            self.provider.principal_for(self, path=self._next_path())
        except AuthError as refused:
            # A ?token= refused (403) on the page that redirected here is not repeated in this request.
            presented = (self.request.headers.get("Authorization") or self.get_query_argument("token", None)
                         or self.get_cookie(COOKIE))
            if not presented and self.get_query_argument("status", "401") == "403":
                need = "of tenant \"*\"" if needs_all_tenants(self._next_path()) else "of its tenant"
                self._refuse(AuthError(403, f"this token may not open this page: it needs role read (or admin) {need}"))
            else:
                self._refuse(refused)
            return
        self.redirect(self._next())

    def post(self) -> None:
        try:
            self.provider.principal_for(self, token=self.get_body_argument("token", "").strip() or None,
                                        path=self._next_path())
        except AuthError as exc:
            self._refuse(exc)
            return
        self.redirect(self._next(), status=303)

    def _next_path(self) -> str:
        return urlsplit(self._next()).path or "/"

    def _next(self) -> str:
        target = self.get_query_argument("next", "/")
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
            return "/"  # only back into this dashboard
        return target

    def _refuse(self, error: AuthError) -> None:
        self.set_status(error.status)
        for name, value in error.headers.items():
            self.set_header(name, value)
        self.set_header("Cache-Control", "no-store")
        if "text/html" in self.request.headers.get("Accept", ""):
            action = f"{LOGIN_PATH}?{urlencode({'next': self._next()})}"
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(_FORM.format(message=html.escape(error.message), action=html.escape(action)))
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"error": error.message, "status": error.status}))
