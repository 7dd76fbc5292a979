"""Who may open the dashboard: the stack's authenticator, through Bokeh's ``auth_provider`` hooks.

The dashboard shows every tenant (rates, templates, alerts), so it needs a principal that may
``read`` every tenant: tenant ``"*"`` with role read or admin. Without tokens configured, the
authenticator's rule holds: loopback clients only.

With tokens, a client presents one of:

* ``Authorization: Bearer <token>`` on each request (scripts, plain HTTP clients);
* ``?token=<token>`` once on any page; the answer then sets a session cookie (``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` over TLS) that holds a random session id, never the token;
* the session cookie, set above or by the login form (``/login``, which a browser without a
  session is redirected to).

Refusals answer 401 (no or invalid credentials, ``WWW-Authenticate: Bearer``) or 403 (a token that
may not read every tenant, a client off loopback without tokens): JSON for HTTP clients, the login
form for browsers.
"""
from __future__ import annotations

import html
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler

from logwarden.common.auth import READ, AuthError, Authenticator, Principal

COOKIE = "logwarden_session"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000
LOGIN_PATH = "/login"
_ERROR_ATTRIBUTE = "_logwarden_auth_error"


class DashboardAuth(AuthProvider):
    """Bokeh auth provider backed by an :class:`Authenticator`; sessions live in this process."""

    def __init__(self, authenticator: Authenticator, secure_cookie: bool) -> None:
        self.authenticator = authenticator
        self.secure_cookie = secure_cookie
        self._sessions: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()
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
        return [(LOGIN_PATH, LoginHandler, {"provider": self})]

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
    def principal_for(self, handler: RequestHandler, token: str | None = None) -> Principal:
        """The principal of a request that may read every tenant; AuthError otherwise. A valid ``token``
        (given, or as ``?token=``) opens a session (the cookie is set on ``handler``'s answer)."""
        request = handler.request
        peer = request.remote_ip
        if self.authenticator.open_to_loopback_only:
            return self._allowed(self.authenticator.authenticate(None, peer))
        token = token or handler.get_query_argument("token", None)
        if request.headers.get("Authorization"):
            return self._allowed(self.authenticator.authenticate(request.headers["Authorization"], peer))
        if token:
            principal = self._allowed(self.authenticator.authenticate(None, peer, token=token))
            self._open_session(handler, principal)
            return principal
        session = handler.get_cookie(COOKIE)
        if session:
            principal = self._session(session)
            if principal is not None:
                return principal
            raise AuthError(401, "the dashboard session expired: give a token again")
        raise AuthError(401, "the dashboard needs a read token of every tenant: open it with ?token=<token> "
                             "or send Authorization: Bearer <token>")

    def _allowed(self, principal: Principal) -> Principal:
        return Authenticator.check(principal, READ, all_tenants=True)

    def _open_session(self, handler: RequestHandler, principal: Principal) -> None:
        session = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
                while len(self._sessions) >= MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session] = (principal, now + SESSION_SECONDS)
        handler.set_cookie(COOKIE, session, path="/", httponly=True, secure=self.secure_cookie,
                           samesite="Strict", max_age=SESSION_SECONDS)

    def _session(self, session: str) -> Principal | None:
        with self._lock:
            found = self._sessions.get(session)
            if found is None:
                return None
            if found[1] <= time.time():
                del self._sessions[session]
                return None
            return found[0]


_FORM = """<!doctype html>
<html><head><meta charset="utf-8"><title>logwarden dashboard</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto">
<h1>logwarden dashboard</h1>
<p>{message}</p>
<form method="post" action="{action}">
<label>Read token (tenant "*"): <input type="password" name="token" autofocus></label>
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
            self.provider.principal_for(self)
        except AuthError as refused:
            # A ?token= refused (403) on the page that redirected here is not repeated in this request.
            presented = (self.request.headers.get("Authorization") or self.get_query_argument("token", None)
                         or self.get_cookie(COOKIE))
            if not presented and self.get_query_argument("status", "401") == "403":
                self._refuse(AuthError(403, "this token may not open the dashboard: it needs role read (or admin) "
                                            "of tenant \"*\""))
            else:
                self._refuse(refused)
            return
        self.redirect(self._next())

    def post(self) -> None:
        try:
            self.provider.principal_for(self, token=self.get_body_argument("token", "").strip() or None)
        except AuthError as exc:
            self._refuse(exc)
            return
        self.redirect(self._next(), status=303)

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
